/* cnn.y — the grammar of .cnn files (pure, reentrant bison with locations).
 *
 *   file      := { [statement] END }
 *   statement := WORD { argument }
 *   argument  := value | WORD EQ value
 *   value     := number | size | WORD
 *
 * Layer kinds, option names and their meaning are checked later (check.c).
 * A syntax error skips to the end of its statement (`error END`), so one
 * run reports every bad statement. */
%code requires {
#include "parse_state.h"
}

%define api.pure full
%define api.prefix {cnn_}
%define api.location.type {Loc}
%define parse.error custom
/* Reduce only on a lookahead that fits: otherwise `conv 5x5x` (a bad token
 * after the word) would first reduce `conv` to a statement and add it to the
 * AST, and the checker would report the same mistake a second time. */
%define lr.default-reduction consistent
%locations
%param {void *scanner}
%parse-param {ParseState *ps}

%code {
#include <stdarg.h>
#include <string.h>
typedef union CNN_STYPE CNN_STYPE;
int cnn_lex(CNN_STYPE *lval, Loc *lloc, void *scanner);
static void cnn_error(Loc *loc, void *scanner, ParseState *ps, const char *msg);
static Stmt *make_stmt(ParseState *ps, const char *word, Loc loc, Arg *args);
static void add_stmt(ParseState *ps, const char *word, Loc loc, Arg *args);
static Arg *make_arg(ParseState *ps, const char *name, Loc name_loc, Value v);
static Arg *append_arg(Arg *last, Arg *a);

/* Merge locations: a rule spans from its first token to the end of its last. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                          \
    do {                                                                     \
        if (N) {                                                             \
            (Cur).off = YYRHSLOC(Rhs, 1).off;                                \
            (Cur).len = YYRHSLOC(Rhs, N).off + YYRHSLOC(Rhs, N).len - (Cur).off; \
        } else {                                                             \
            (Cur).off = YYRHSLOC(Rhs, 0).off + YYRHSLOC(Rhs, 0).len;         \
            (Cur).len = 0;                                                   \
        }                                                                    \
    } while (0)
}

%union {
    Value val;
    char *str;
    Arg *arg;
}

%token <str> WORD "word"
%token <val> VALUE "number or size"
%token END "end of statement"
%token BAD "bad token"
%token EQ "'='"
%type <arg> args arg
%type <val> value

%%
file
    : %empty
    | file END
    | file statement END
    | file error END            { ps->bad_token = 0; yyerrok; }
    ;

statement
    : WORD args                 { add_stmt(ps, $1, @1, $2); }
    ;

args
    : %empty                    { $$ = NULL; }
    | args arg                  { $$ = append_arg($1, $2); }   /* O(1): see append_arg */
    ;

arg
    : value                     { $$ = make_arg(ps, NULL, @1, $1); }
    | WORD EQ value            { $$ = make_arg(ps, $1, @1, $3); }
    ;

value
    : VALUE                     { $$ = $1; }
    | WORD                      { memset(&$$, 0, sizeof $$); $$.kind = VAL_WORD; $$.text = $1; $$.loc = @1; }
    ;
%%

static Stmt *make_stmt(ParseState *ps, const char *word, Loc loc, Arg *args)
{
    Stmt *s = ARENA_NEW(ps->arena, Stmt);
    s->word = word;
    s->loc = loc;
    s->args = args ? args->next : NULL;   /* the ring's first argument */
    if (args) args->next = NULL;
    for (Arg *a = s->args; a; a = a->next) s->nargs++;
    return s;
}

static void add_stmt(ParseState *ps, const char *word, Loc loc, Arg *args)
{
    if (ps->ast->nstmts >= PARSE_MAX_STATEMENTS) {
        if (!ps->too_many++)
            diag_error(ps->diag, loc, "the model has more than %d statements (layers and settings); cnnc reads no "
                       "further (a network is a few hundred lines)", PARSE_MAX_STATEMENTS);
        return;
    }
    *ps->tail = make_stmt(ps, word, loc, args);
    ps->tail = &(*ps->tail)->next;
    ps->ast->nstmts++;
}

static Arg *make_arg(ParseState *ps, const char *name, Loc name_loc, Value v)
{
    Arg *a = ARENA_NEW(ps->arena, Arg);
    a->name = name;
    a->name_loc = name ? name_loc : v.loc;
    a->value = v;
    return a;
}

/* While a statement is parsed its arguments are a ring: the list's handle
 * is the last argument, whose next is the first.  Appending is O(1), so a
 * line of a million arguments parses in linear time; make_stmt opens the
 * ring. */
static Arg *append_arg(Arg *last, Arg *a)
{
    if (!last) {
        a->next = a;
        return a;
    }
    a->next = last->next;
    last->next = a;
    return a;
}

void parse_error(ParseState *ps, Loc loc, const char *fmt, ...)
{
    /* One error per statement: the first is the one worth reading. */
    if (ps->bad_token) return;
    ps->bad_token = 1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_error(ps->diag, loc, "%s", msg);
}

static void cnn_error(Loc *loc, void *scanner, ParseState *ps, const char *msg)
{
    (void)scanner;
    parse_error(ps, *loc, "%s", msg);
}

/* Explains a syntax error in the terms of the language, not of the parser. */
static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner, ParseState *ps)
{
    (void)scanner;
    Loc loc = *yypcontext_location(ctx);
    yysymbol_kind_t tok = yypcontext_token(ctx);
    yysymbol_kind_t expected[4];
    int n = yypcontext_expected_tokens(ctx, expected, 4);
    int want_value = n == 2 && (expected[0] == YYSYMBOL_VALUE || expected[1] == YYSYMBOL_VALUE)
                     && (expected[0] == YYSYMBOL_WORD || expected[1] == YYSYMBOL_WORD);
    if (tok == YYSYMBOL_BAD)
        parse_error(ps, loc, "bad token");   /* the scanner has already explained it */
    else if (want_value)
        parse_error(ps, loc, "an option needs a value after '=', as in stride=2 or pad=same");
    else if (tok == YYSYMBOL_EQ)
        parse_error(ps, loc, "'=' must stand between an option name and its value, as in stride=2");
    else if (tok == YYSYMBOL_VALUE)
        parse_error(ps, loc, "a statement starts with a word (a layer like conv, or a setting like input); a number or size cannot start one");
    else
        parse_error(ps, loc, "unexpected %s", yysymbol_name(tok));
    return 0;
}

#include "lex.yy.h"

Ast *parse_source(Arena *a, Diag *d, const Source *src)
{
    ParseState ps;
    memset(&ps, 0, sizeof ps);
    ps.arena = a;
    ps.diag = d;
    ps.ast = ARENA_NEW(a, Ast);
    ps.tail = &ps.ast->first;
    yyscan_t scanner;
    if (cnn_lex_init_extra(&ps, &scanner) != 0) {
        diag_error(d, (Loc){0, 0}, "could not start the scanner");
        return ps.ast;
    }
    YY_BUFFER_STATE buf = cnn__scan_bytes(src->text, src->len, scanner);
    cnn_parse(scanner, &ps);
    cnn__delete_buffer(buf, scanner);
    cnn_lex_destroy(scanner);
    return ps.ast;
}
