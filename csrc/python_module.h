// An empty Python module, so `import bitkernels._C` loads the shared library and with it the
// TORCH_LIBRARY registrations. The ops are reached through torch.ops.bitkernels.
#pragma once

#include <Python.h>

#define BK_PYTHON_MODULE(name)                                                       \
  extern "C" PyMODINIT_FUNC PyInit_##name(void) {                                    \
    static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, #name, nullptr, -1, \
                                            nullptr};                                \
    return PyModule_Create(&module_def);                                             \
  }
