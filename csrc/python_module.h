// The Python module of a shared library, so that `import bitkernels._C` loads it and with it the
// TORCH_LIBRARY registrations. The ops are reached through torch.ops.bitkernels; `methods`, a
// PyMethodDef table or nullptr, are the module's own functions.
#pragma once

#include <Python.h>

#define BK_PYTHON_MODULE(name, methods)                                              \
  extern "C" PyMODINIT_FUNC PyInit_##name(void) {                                    \
    static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, #name, nullptr, -1, \
                                            methods};                                \
    return PyModule_Create(&module_def);                                             \
  }
