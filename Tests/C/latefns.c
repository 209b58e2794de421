/* A library that test_register loads only after its pool's workers have started. */
#include <stdint.h>
int64_t late_triple(int64_t x) { return 3 * x; }
