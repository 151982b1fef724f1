/* test_parser.c — the AST that grammar/cnn.y builds, through parse_source.
 *
 * A statement is a word and its arguments; an argument is positional (name
 * NULL) or name=value.  A syntax error costs only its own statement: the
 * parser skips to the next ';' or newline, reports once, and keeps every good
 * statement before and after — and never keeps the bad one. */
#include <stdlib.h>
#include <string.h>
#include "unit.h"

typedef struct Parsed {
    Arena arena;
    Ast *ast;
    int errors;
    char *diag;
} Parsed;

static void parse(Parsed *p, const char *text, int len)
{
    memset(p, 0, sizeof *p);
    size_t n = 0;
    FILE *f = open_memstream(&p->diag, &n);
    const Source *src = source_from_string(&p->arena, "t.cnn", text, len);
    Diag d;
    diag_init(&d, src, f);
    p->ast = parse_source(&p->arena, &d, src);
    fclose(f);
    p->errors = d.errors;
}

#define PARSE(p, s) parse(p, s, (int)strlen(s))

static void parsed_free(Parsed *p)
{
    free(p->diag);
    arena_free(&p->arena);
}

/* The statement words joined by spaces: "input conv relu". */
static const char *words(const Parsed *p)
{
    static char s[256];
    s[0] = '\0';
    for (const Stmt *st = p->ast->first; st; st = st->next) {
        if (s[0]) strcat(s, " ");
        strncat(s, st->word, sizeof s - strlen(s) - 2);
    }
    return s;
}

static const Stmt *stmt_at(const Parsed *p, int i)
{
    const Stmt *st = p->ast->first;
    while (st && i--) st = st->next;
    ck_assert_ptr_nonnull(st);
    return st;
}

START_TEST(statement_words_and_count)
{
    Parsed p;
    PARSE(&p, "input 28x28x1\nconv 5x5x6 pad=2; relu; pool 2\n\n;;\nfc 10");
    ck_assert_int_eq(p.errors, 0);
    ck_assert_str_eq(words(&p), "input conv relu pool fc");
    ck_assert_int_eq(p.ast->nstmts, 5);
    ck_assert_int_eq(stmt_at(&p, 1)->loc.off, 14);
    ck_assert_int_eq(stmt_at(&p, 1)->loc.len, 4);
    parsed_free(&p);
}
END_TEST

START_TEST(positional_and_named_arguments)
{
    Parsed p;
    PARSE(&p, "conv 3x3x10 pad=1 flip stride=2x1");
    ck_assert_int_eq(p.errors, 0);
    const Stmt *s = stmt_at(&p, 0);
    ck_assert_int_eq(s->nargs, 4);
    const Arg *a = s->args;
    ck_assert_ptr_null(a->name);                       /* 3x3x10 */
    ck_assert_int_eq(a->value.kind, VAL_DIMS);
    ck_assert_int_eq(a->name_loc.off, 5);              /* a positional's name_loc is its value's */
    a = a->next;
    ck_assert_str_eq(a->name, "pad");                  /* pad=1 */
    ck_assert_int_eq(a->name_loc.off, 12);
    ck_assert_int_eq(a->value.kind, VAL_INT);
    ck_assert_int_eq(a->value.loc.off, 16);
    ck_assert(a->value.num == 1);
    a = a->next;
    ck_assert_ptr_null(a->name);                       /* flip: a bare word */
    ck_assert_int_eq(a->value.kind, VAL_WORD);
    ck_assert_str_eq(a->value.text, "flip");
    a = a->next;
    ck_assert_str_eq(a->name, "stride");               /* stride=2x1 */
    ck_assert_int_eq(a->value.kind, VAL_DIMS);
    ck_assert(a->value.dims[0] == 2 && a->value.dims[1] == 1);
    ck_assert_ptr_null(a->next);
    parsed_free(&p);
}
END_TEST

START_TEST(word_values)
{
    Parsed p;
    PARSE(&p, "optimizer adam lr=0.001; conv 3x3x2 pad=same");
    ck_assert_int_eq(p.errors, 0);
    const Arg *a = stmt_at(&p, 0)->args;
    ck_assert_int_eq(a->value.kind, VAL_WORD);
    ck_assert_str_eq(a->value.text, "adam");
    ck_assert_str_eq(a->next->name, "lr");
    ck_assert_int_eq(a->next->value.kind, VAL_REAL);
    ck_assert(a->next->value.num == 0.001);
    const Arg *pad = stmt_at(&p, 1)->args->next;
    ck_assert_int_eq(pad->value.kind, VAL_WORD);
    ck_assert_str_eq(pad->value.text, "same");
    parsed_free(&p);
}
END_TEST

START_TEST(empty_and_comment_only)
{
    Parsed p;
    PARSE(&p, "");
    ck_assert_int_eq(p.errors, 0);
    ck_assert_int_eq(p.ast->nstmts, 0);
    ck_assert_ptr_null(p.ast->first);
    parsed_free(&p);
    PARSE(&p, "# only a comment\n\n   \n;\n# another");
    ck_assert_int_eq(p.errors, 0);
    ck_assert_int_eq(p.ast->nstmts, 0);
    parsed_free(&p);
}
END_TEST

/* A bad statement followed by a good one: the good one is kept, the bad one is not. */
START_TEST(recovery_keeps_the_good_statement)
{
    static const char *bad[] = {
        "conv 3x3x2 = 4",        /* '=' without a name */
        "conv 3x3x2 stride=",    /* name= without a value */
        "conv 5x5x",             /* a bad size */
        "conv 3x3x2 @",          /* a stray character */
        "8x8x1",                 /* a value cannot start a statement */
        "= 3",
        "relu stride==2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[128];
        snprintf(text, sizeof text, "input 8x8x1\n%s\nrelu\n", bad[i]);
        Parsed p;
        PARSE(&p, text);
        ck_assert_msg(p.errors == 1, "'%s': %d errors:\n%s", bad[i], p.errors, p.diag);
        ck_assert_msg(!strcmp(words(&p), "input relu"), "'%s' gave statements '%s'", bad[i], words(&p));
        ck_assert_msg(strstr(p.diag, "t.cnn:2:") != NULL, "'%s': %s", bad[i], p.diag);
        parsed_free(&p);
    }
}
END_TEST

START_TEST(recovery_at_semicolon)
{
    Parsed p;
    PARSE(&p, "input 8x8x1; conv 3x3x2 = 4; relu; fc @ 10; softmax");
    ck_assert_int_eq(p.errors, 2);
    ck_assert_str_eq(words(&p), "input relu softmax");
    parsed_free(&p);
}
END_TEST

START_TEST(every_bad_statement_reported_once)
{
    Parsed p;
    PARSE(&p, "relu @ @ @\ntanh = =\nsigmoid\nfc 1.2.3 4x\n");
    ck_assert_int_eq(p.errors, 3);
    ck_assert_str_eq(words(&p), "sigmoid");
    ck_assert_ptr_nonnull(strstr(p.diag, "t.cnn:1:6: error: stray '@'"));
    ck_assert_ptr_nonnull(strstr(p.diag, "t.cnn:2:6: error: '=' must stand between an option name and its value"));
    ck_assert_ptr_nonnull(strstr(p.diag, "t.cnn:4:4: error: '1.2.3' is not a number or a size"));
    parsed_free(&p);
}
END_TEST

START_TEST(error_in_last_line_without_newline)
{
    Parsed p;
    PARSE(&p, "relu\nconv 3x3x2 stride=");
    ck_assert_int_eq(p.errors, 1);
    ck_assert_str_eq(words(&p), "relu");
    /* the caret goes where the value is missing: just after '=', column 19 */
    ck_assert_ptr_nonnull(strstr(p.diag, "t.cnn:2:19: error: an option needs a value after '='"));
    parsed_free(&p);
}
END_TEST

START_TEST(many_statements)
{
    enum { N = 5000 };
    char *text = malloc(N * 5 + 1);
    for (int i = 0; i < N; i++) memcpy(text + 5 * i, "relu\n", 5);
    text[N * 5] = '\0';
    Parsed p;
    PARSE(&p, text);
    ck_assert_int_eq(p.errors, 0);
    ck_assert_int_eq(p.ast->nstmts, N);
    parsed_free(&p);
    free(text);
}
END_TEST

Suite *parser_suite(void)
{
    Suite *s = suite_create("parser");
    TCase *tc = tcase_create("ast");
    tcase_add_test(tc, statement_words_and_count);
    tcase_add_test(tc, positional_and_named_arguments);
    tcase_add_test(tc, word_values);
    tcase_add_test(tc, empty_and_comment_only);
    tcase_add_test(tc, recovery_keeps_the_good_statement);
    tcase_add_test(tc, recovery_at_semicolon);
    tcase_add_test(tc, every_bad_statement_reported_once);
    tcase_add_test(tc, error_in_last_line_without_newline);
    tcase_add_test(tc, many_statements);
    suite_add_tcase(s, tc);
    return s;
}
