/* cnn_load_lanes / cnn_store_lanes, the generated prelude's partial-vector
 * helpers, for every count of lanes: a load gives lanes [0, n) of memory and
 * zeros after, and reads nothing past n (the floats after are a guard page's
 * worth of NaN that must not show up); a store writes lanes [0, n) and leaves
 * the next floats as they were.  Built by run-lanes.sh with the generated C of
 * a model #included (MODEL_C), once for this machine and once for generic
 * x86-64, so that every #if branch this host can run is run. */
#include MODEL_C
#include <stdio.h>

static int check_width(int vl)
{
    int bad = 0;
    for (int n = 1; n <= vl; n++) {   /* n = vl too: a window row of exactly one vector */
        float src[32], vec[16], dst[32];
        for (int i = 0; i < 32; i++) src[i] = i < n ? (float)(i + 1) : NAN;
        cnn_load_lanes(vec, src, vl, n);   /* vec: a vector-sized float array, as the kernels pass */
        for (int i = 0; i < vl; i++) {
            float want = i < n ? (float)(i + 1) : 0.0f;
            if (!(vec[i] == want)) printf("load vl %d n %d: lane %d is %g, want %g\n", vl, n, i, vec[i], want), bad = 1;
        }
        for (int i = 0; i < vl; i++) vec[i] = (float)(100 + i);
        for (int i = 0; i < 32; i++) dst[i] = -1.0f;
        cnn_store_lanes(dst, vec, vl, n);
        for (int i = 0; i < 32; i++) {
            float want = i < n ? (float)(100 + i) : -1.0f;
            if (dst[i] != want) printf("store vl %d n %d: float %d is %g, want %g\n", vl, n, i, dst[i], want), bad = 1;
        }
    }
    return bad;
}

int main(void)
{
    int bad = check_width(8) | check_width(16);
    printf("%s: partial vectors of 8 and 16 floats, every lane count\n", bad ? "FAIL" : "ok");
    return bad;
}
