/* The trainer's long recovery runs (every architecture reaches MMCS >= 0.95 on the easy
 * toy; resampling keeps recovery), built from test_train.c as their own executable so the
 * quick behaviour tests stay quick enough for valgrind. */
#define SAE_TRAIN_RECOVERY 1
#include "test_train.c"
