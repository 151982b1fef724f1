/* main.c — runs every Check suite in tests/unit/ and prints Check's summary. */
#include <stdlib.h>
#include "unit.h"

int main(void)
{
    SRunner *sr = srunner_create(shapes_suite());
    srunner_add_suite(sr, lexer_suite());
    srunner_add_suite(sr, parser_suite());
    srunner_add_suite(sr, summary_suite());
    srunner_add_suite(sr, plan_suite());
    srunner_add_suite(sr, robust_suite());   /* runs build/cnnc (or $CNNC) on hostile files */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
