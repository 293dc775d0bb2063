/* SVG pictures: the architecture (trellis path and cell DAG) and curves. */
#ifndef SEGNAS_CLI_SVG_H
#define SEGNAS_CLI_SVG_H

#include <stdio.h>

#include "segnas/search.h"

/* One picture with the network-level path on the trellis (left) and the
 * cell as a DAG (right). Returns 0 or prints the error. */
int svg_write_genotype(const char *path, const sn_genotype *g, const char *title);

#endif
