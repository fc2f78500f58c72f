/* placeholder */
#include "cli.h"
int cli_report(cli_options *o, int argc, char **argv) { (void)o, (void)argc, (void)argv; return CLI_EXIT_USAGE; }
