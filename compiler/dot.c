/* dot.c — `cnnc dot`: the network as a Graphviz digraph, one box per layer
 * labelled with its course name and output shape; unpool gets a dashed edge
 * from the pool whose argmax it uses. */
#include "dot.h"

void dot_print(const Model *m, FILE *out)
{
    fprintf(out, "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n",
            m->name);
    fprintf(out, "  input [label=\"input\\n%ld×%ld×%ld\", shape=oval];\n", m->input.h, m->input.w, m->input.c);
    const char *prev = "input";
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = &m->layers[i];
        fprintf(out, "  %s [label=\"%s\\n%s\\n%ld×%ld×%ld\"%s];\n", l->name, l->name, l->title,
                l->out.h, l->out.w, l->out.c, l->folded ? ", style=dashed" : "");
        fprintf(out, "  %s -> %s;\n", prev, l->name);
        if (l->kind->tag == LAYER_UNPOOL)
            fprintf(out, "  %s -> %s [style=dashed, label=\"argmax\"];\n", l->pair->name, l->name);
        prev = l->name;
    }
    fputs("}\n", out);
}
