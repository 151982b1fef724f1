/* main.c — the program's entry: the generated model object supplies cnn_model. */
#include "cnnrt.h"

int main(int argc, char **argv) { return cnn_main(&cnn_model, argc, argv); }
