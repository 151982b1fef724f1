/* parse_state.h — what the scanner and the parser share while reading one file. */
#ifndef CNNC_PARSE_STATE_H
#define CNNC_PARSE_STATE_H
#include "arena.h"
#include "ast.h"
#include "diag.h"

typedef struct ParseState {
    Arena *arena;
    Diag *diag;
    int pos;            /* byte offset of the next token */
    int last_was_end;   /* so EOF can close an unterminated last statement */
    int bad_token;      /* the scanner already reported this statement's error */
    Ast *ast;
    Stmt **tail;
} ParseState;

void parse_error(ParseState *ps, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#endif
