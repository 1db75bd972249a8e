/* `listend adapt`: model packs from an operator's recordings (src/cli/adapt.c,
 * docs/engine.md § Model packs). Runs in its own process; not thread-safe. */
#ifndef LD_CLI_ADAPT_H
#define LD_CLI_ADAPT_H

int ld_cli_adapt_main(int argc, char **argv);

#endif
