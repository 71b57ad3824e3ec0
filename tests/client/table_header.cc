/* greenmarket/table.h compiled as C++ (see table_header.c). */
#include "table_header.c"
