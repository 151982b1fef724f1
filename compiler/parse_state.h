/* parse_state.h — what the scanner and the parser share while reading one file. */
#ifndef CNNC_PARSE_STATE_H
#define CNNC_PARSE_STATE_H
#include "arena.h"
#include "ast.h"
#include "diag.h"

/* A network is a few hundred lines.  Past this many statements the rest are
 * dropped with one error, so that a hostile file (16 MiB of "relu") cannot make
 * the checker and planner take gigabytes. */
enum { PARSE_MAX_STATEMENTS = 150000 };

typedef struct ParseState {
    Arena *arena;
    Diag *diag;
    int pos;            /* byte offset of the next token */
    int last_was_end;   /* so EOF can close an unterminated last statement */
    int bad_token;      /* the scanner already reported this statement's error */
    int too_many;       /* statements past PARSE_MAX_STATEMENTS were dropped */
    Ast *ast;
    Stmt **tail;
} ParseState;

void parse_error(ParseState *ps, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#endif
