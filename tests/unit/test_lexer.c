/* test_lexer.c — the tokens of grammar/cnn.l, one scanner call at a time.
 *
 * What is pinned down: sizes (3x3x10) are one token and not numbers; integers,
 * reals (1e-8, .25) and words are told apart; '#' comments vanish, even a ';'
 * inside one; ';' and a newline both end a statement; a last statement
 * without a newline still gets its END; bad tokens are reported once, at
 * their byte offset, as BAD. */
#include <stdlib.h>
#include <string.h>
#include "unit.h"
#include "parse_state.h"
#include "cnn.tab.h"
#define YYSTYPE CNN_STYPE
#define YYLTYPE Loc
#include "lex.yy.h"

enum { MAX_TOKS = 32 };

typedef struct Lexed {
    int n;
    int tok[MAX_TOKS];
    Loc loc[MAX_TOKS];
    Value val[MAX_TOKS];      /* VALUE tokens */
    const char *word[MAX_TOKS];
    int errors;
    char *diag;               /* the messages, malloc'd */
    Arena arena;
} Lexed;

/* Scans text (len bytes) to its end; tokens, values and diagnostics land in *x. */
static void lex(Lexed *x, const char *text, int len)
{
    memset(x, 0, sizeof *x);
    size_t dn = 0;
    FILE *f = open_memstream(&x->diag, &dn);
    const Source *src = source_from_string(&x->arena, "t.cnn", text, len);
    Diag d;
    diag_init(&d, src, f);
    ParseState ps;
    memset(&ps, 0, sizeof ps);
    ps.arena = &x->arena;
    ps.diag = &d;
    yyscan_t sc;
    ck_assert_int_eq(cnn_lex_init_extra(&ps, &sc), 0);
    YY_BUFFER_STATE buf = cnn__scan_bytes(src->text, src->len, sc);
    for (;;) {
        CNN_STYPE v;
        Loc loc;
        int t = cnn_lex(&v, &loc, sc);
        if (t == 0 || x->n == MAX_TOKS) break;
        x->tok[x->n] = t;
        x->loc[x->n] = loc;
        if (t == VALUE) x->val[x->n] = v.val;
        if (t == WORD) x->word[x->n] = v.str;
        x->n++;
        if (t == END) ps.bad_token = 0;   /* what the parser's error recovery does at END */
    }
    cnn__delete_buffer(buf, sc);
    cnn_lex_destroy(sc);
    fclose(f);
    x->errors = d.errors;
}

static void lexed_free(Lexed *x)
{
    free(x->diag);
    arena_free(&x->arena);
}

#define LEX(x, s) lex(x, s, (int)strlen(s))

/* The token kinds, as a string: W word, V value, E end, = eq, B bad. */
static const char *kinds(const Lexed *x)
{
    static char s[MAX_TOKS + 1];
    int i;
    for (i = 0; i < x->n; i++)
        s[i] = x->tok[i] == WORD ? 'W' : x->tok[i] == VALUE ? 'V' : x->tok[i] == END ? 'E' :
               x->tok[i] == EQ ? '=' : x->tok[i] == BAD ? 'B' : '?';
    s[i] = '\0';
    return s;
}

START_TEST(size_is_one_token)
{
    Lexed x;
    LEX(&x, "conv 3x3x10");
    ck_assert_str_eq(kinds(&x), "WVE");
    ck_assert_str_eq(x.word[0], "conv");
    ck_assert_int_eq(x.val[1].kind, VAL_DIMS);
    ck_assert_int_eq(x.val[1].ndims, 3);
    ck_assert(x.val[1].dims[0] == 3 && x.val[1].dims[1] == 3 && x.val[1].dims[2] == 10);
    ck_assert_int_eq(x.loc[1].off, 5);
    ck_assert_int_eq(x.loc[1].len, 6);
    ck_assert_str_eq(x.val[1].text, "3x3x10");
    ck_assert_int_eq(x.errors, 0);
    lexed_free(&x);
}
END_TEST

START_TEST(size_two_sides_and_capital_x)
{
    Lexed x;
    LEX(&x, "28x28 2X3");
    ck_assert_str_eq(kinds(&x), "VVE");
    ck_assert_int_eq(x.val[0].kind, VAL_DIMS);
    ck_assert_int_eq(x.val[0].ndims, 2);
    ck_assert(x.val[0].dims[0] == 28 && x.val[0].dims[1] == 28);
    ck_assert(x.val[1].ndims == 2 && x.val[1].dims[0] == 2 && x.val[1].dims[1] == 3);
    lexed_free(&x);
}
END_TEST

START_TEST(integers_and_reals)
{
    Lexed x;
    LEX(&x, "3 -1 +7 0.5 1e-8 .25 1e5 2.");
    ck_assert_str_eq(kinds(&x), "VVVVVVVVE");
    static const ValueKind want_kind[] = {VAL_INT, VAL_INT, VAL_INT, VAL_REAL, VAL_REAL, VAL_REAL, VAL_REAL, VAL_REAL};
    static const double want_num[] = {3, -1, 7, 0.5, 1e-8, 0.25, 100000, 2};
    for (int i = 0; i < 8; i++) {
        ck_assert_msg(x.val[i].kind == want_kind[i], "token %d (%s): kind %d", i, x.val[i].text, x.val[i].kind);
        ck_assert_msg(x.val[i].num == want_num[i], "token %d (%s): %g", i, x.val[i].text, x.val[i].num);
    }
    ck_assert_int_eq(x.errors, 0);
    lexed_free(&x);
}
END_TEST

START_TEST(number_too_big_is_flagged_not_wrapped)
{
    Lexed x;
    LEX(&x, "99999999999999999999 1000000000 1000000001 2000000000x3");
    ck_assert_str_eq(kinds(&x), "VVVVE");
    ck_assert(x.val[0].too_big);
    ck_assert(!x.val[1].too_big);   /* 10^9 is the largest accepted */
    ck_assert(x.val[2].too_big);
    ck_assert(x.val[3].too_big);
    ck_assert_int_eq(x.errors, 0);  /* the checker reports it, in the option's terms */
    lexed_free(&x);
}
END_TEST

START_TEST(words_with_dots_and_dashes)
{
    Lexed x;
    LEX(&x, "model my-net.v2 _x");
    ck_assert_str_eq(kinds(&x), "WWWE");
    ck_assert_str_eq(x.word[1], "my-net.v2");
    ck_assert_str_eq(x.word[2], "_x");
    lexed_free(&x);
}
END_TEST

START_TEST(option_is_word_eq_value)
{
    Lexed x;
    LEX(&x, "stride=2 pad = same");
    ck_assert_str_eq(kinds(&x), "W=VW=WE");
    ck_assert_int_eq(x.loc[1].off, 6);
    ck_assert_int_eq(x.loc[2].off, 7);
    ck_assert_str_eq(x.word[5], "same");
    lexed_free(&x);
}
END_TEST

START_TEST(comments_vanish_even_with_semicolons)
{
    Lexed x;
    LEX(&x, "# a comment; conv 3x3x10\nrelu # trailing ; comment\n");
    ck_assert_str_eq(kinds(&x), "EWE");
    ck_assert_str_eq(x.word[1], "relu");
    ck_assert_int_eq(x.loc[1].off, 25);
    lexed_free(&x);
}
END_TEST

START_TEST(semicolon_and_newline_both_end)
{
    Lexed x;
    LEX(&x, "relu;tanh\nsigmoid ; softmax\n");
    ck_assert_str_eq(kinds(&x), "WEWEWEWE");
    ck_assert_int_eq(x.loc[1].off, 4);     /* the ';' */
    ck_assert_int_eq(x.loc[3].off, 9);     /* the newline */
    lexed_free(&x);
}
END_TEST

START_TEST(last_statement_without_newline_gets_end)
{
    Lexed x;
    LEX(&x, "input 8x8\nrelu");
    ck_assert_str_eq(kinds(&x), "WVEWE");
    ck_assert_int_eq(x.loc[4].off, 14);    /* at the end of the text */
    ck_assert_int_eq(x.loc[4].len, 0);
    lexed_free(&x);
    LEX(&x, "relu\n");                      /* no second END after a final newline */
    ck_assert_str_eq(kinds(&x), "WE");
    lexed_free(&x);
    LEX(&x, "");
    ck_assert_str_eq(kinds(&x), "E");
    lexed_free(&x);
}
END_TEST

START_TEST(bad_size_is_one_bad_token)
{
    Lexed x;
    LEX(&x, "conv 5x5x\n");
    ck_assert_str_eq(kinds(&x), "WBE");
    ck_assert_int_eq(x.loc[1].off, 5);
    ck_assert_int_eq(x.loc[1].len, 4);
    ck_assert_int_eq(x.errors, 1);
    ck_assert_ptr_nonnull(strstr(x.diag, "t.cnn:1:6: error: '5x5x' is not a number or a size"));
    lexed_free(&x);
    LEX(&x, "1.2.3 3x 4e");
    ck_assert_str_eq(kinds(&x), "BBBE");
    ck_assert_int_eq(x.errors, 1);          /* one error per statement */
    lexed_free(&x);
}
END_TEST

START_TEST(stray_characters)
{
    Lexed x;
    LEX(&x, "relu @\ntanh\x01\n");
    ck_assert_str_eq(kinds(&x), "WBEWBE");
    ck_assert_int_eq(x.errors, 2);
    ck_assert_ptr_nonnull(strstr(x.diag, "t.cnn:1:6: error: stray '@' in the model"));
    ck_assert_ptr_nonnull(strstr(x.diag, "t.cnn:2:5: error: unexpected byte 0x01; a .cnn file is plain ASCII text"));
    lexed_free(&x);
}
END_TEST

START_TEST(nul_byte)
{
    Lexed x;
    lex(&x, "relu\0x\n", 7);
    ck_assert_str_eq(kinds(&x), "WBWE");
    ck_assert_int_eq(x.loc[1].off, 4);
    ck_assert_ptr_nonnull(strstr(x.diag, "t.cnn:1:5: error: NUL byte in the model; is this a text file?"));
    lexed_free(&x);
}
END_TEST

START_TEST(long_bad_token_is_quoted_short)
{
    char text[200], want[64];
    memset(text, '7', sizeof text);
    text[1] = text[3] = '.';               /* 7.7.777...: not a number */
    Lexed x;
    lex(&x, text, (int)sizeof text);
    ck_assert_str_eq(kinds(&x), "BE");
    ck_assert_int_eq(x.loc[0].len, 200);
    /* the message quotes the first 40 bytes of it, not 200 */
    snprintf(want, sizeof want, "'%.40s' is not", text);
    ck_assert_ptr_nonnull(strstr(x.diag, want));
    lexed_free(&x);
}
END_TEST

Suite *lexer_suite(void)
{
    Suite *s = suite_create("lexer");
    TCase *tc = tcase_create("tokens");
    tcase_add_test(tc, size_is_one_token);
    tcase_add_test(tc, size_two_sides_and_capital_x);
    tcase_add_test(tc, integers_and_reals);
    tcase_add_test(tc, number_too_big_is_flagged_not_wrapped);
    tcase_add_test(tc, words_with_dots_and_dashes);
    tcase_add_test(tc, option_is_word_eq_value);
    tcase_add_test(tc, comments_vanish_even_with_semicolons);
    tcase_add_test(tc, semicolon_and_newline_both_end);
    tcase_add_test(tc, last_statement_without_newline_gets_end);
    tcase_add_test(tc, bad_size_is_one_bad_token);
    tcase_add_test(tc, stray_characters);
    tcase_add_test(tc, nul_byte);
    tcase_add_test(tc, long_bad_token_is_quoted_short);
    suite_add_tcase(s, tc);
    return s;
}
