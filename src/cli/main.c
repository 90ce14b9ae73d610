/* spinquant command-line entry point. */
#include <stdio.h>

int main(void) {
    fprintf(stderr, "spinquant: no command yet\n");
    return 2;
}
