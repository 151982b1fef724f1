/* roundtrip.c — how long a cache line takes to go from core 0 to core 1 and
 * back: two threads pinned to CPUs 0 and 1 hand a counter to each other.
 * On one core complex (shared L3) it reads tens of ns; on a cloud machine
 * whose two vCPUs the host has put on different complexes or sockets, a few
 * hundred, and then everything the two threads share (every OpenMP barrier,
 * every line one writes and the other reads) costs that much more: such a
 * machine's 2-thread figures come out lower.  bench.py prints it beside each
 * model's figures.  Prints the nanoseconds, or 0 with fewer than 2 CPUs. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

enum { TRIPS = 200000 };
static _Alignas(64) atomic_int baton;

static int pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *second(void *arg)
{
    (void)arg;
    pin(1);
    for (int i = 0; i < TRIPS; i++) {
        while (atomic_load_explicit(&baton, memory_order_acquire) != 2 * i + 1) {}
        atomic_store_explicit(&baton, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

int main(void)
{
    pthread_t t;
    /* one CPU: the two threads would take turns at the scheduler's pace */
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || pin(0) != 0 || pthread_create(&t, NULL, second, NULL) != 0) {
        puts("0");
        return 0;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < TRIPS; i++) {
        atomic_store_explicit(&baton, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&baton, memory_order_acquire) != 2 * i + 2) {}
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(t, NULL);
    printf("%.0f\n", ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / TRIPS);
    return 0;
}
