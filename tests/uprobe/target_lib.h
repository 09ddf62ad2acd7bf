/* The test programs' own shared library (libplbtarget.so). */
#ifndef PLB_TARGET_LIB_H
#define PLB_TARGET_LIB_H
int lib_scale(int x);
#endif
