/* A plugin-like module using greenmarket/table.h, for test_table: loaded,
   used and unloaded again and again. */
#include <stdlib.h>

#include <greenmarket/table.h>

__attribute__((visibility("default"))) size_t table_module_measure(void);
size_t table_module_measure(void) {
  size_t cols = 0;
  free(gm_table_cell("\xe4\xb8\xad\xe6\x96\x87", 0, &cols, NULL));
  return cols;
}
