/* ast.h — a .cnn file as written: statements of a word and its arguments.
 *
 * The grammar knows no layer kinds: `conv 3x3x10 pad=1 flip` is the word
 * "conv" with three arguments (a size, an option and a bare word).  Aliases,
 * defaults and meaning are the checker's job (check.c), which keeps the
 * grammar small and lets every mistake be explained with the layer's rules. */
#ifndef CNNC_AST_H
#define CNNC_AST_H
#include <stdbool.h>
#include "source.h"

typedef enum ValueKind {
    VAL_INT,    /* 2, 64         */
    VAL_REAL,   /* 0.25, 1e-8    */
    VAL_DIMS,   /* 3x3x10, 2x2   */
    VAL_WORD    /* same, adam, flip */
} ValueKind;

enum { AST_MAX_DIMS = 3 };

typedef struct Value {
    ValueKind kind;
    Loc loc;
    const char *text;           /* as written */
    double num;                 /* VAL_INT, VAL_REAL */
    long dims[AST_MAX_DIMS];    /* VAL_DIMS */
    int ndims;
    bool too_big;               /* an integer that does not fit: reported by check */
} Value;

/* `name=value` (name set) or a positional value (name NULL). */
typedef struct Arg {
    const char *name;
    Loc name_loc;
    Value value;
    struct Arg *next;
} Arg;

typedef struct Stmt {
    const char *word;           /* "conv", "input", "optimizer" */
    Loc loc;                    /* the word */
    Arg *args;
    int nargs;
    struct Stmt *next;
} Stmt;

typedef struct Ast {
    Stmt *first;
    int nstmts;
} Ast;

struct Diag;
struct Arena;
/* Parses src; syntax errors go to d (one per bad statement, then parsing
 * resumes at the next ';' or newline).  Returns the statements that parsed. */
Ast *parse_source(struct Arena *a, struct Diag *d, const Source *src);
#endif
