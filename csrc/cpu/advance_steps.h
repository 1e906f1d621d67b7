// advance_steps: the optimizers' `step += 1` for a whole bucket of parameters in one call.
#pragma once

#include <Python.h>

namespace bitkernels {
namespace cpu {

// bitkernels._C.advance_steps(steps: list[Tensor]) -> list[float] | None. Adds 1 to every
// step count (float32 scalars on the CPU, as torch.optim keeps them) and returns the new
// counts; None, with nothing changed, when any of them is something else (another dtype or
// device, a tensor subclass), for the caller's general path.
//
// A Python function rather than an op: it is host bookkeeping, and it returns numbers read
// from the tensors, which an op could not do under torch.compile's fake tensors.
PyObject* advance_steps(PyObject* self, PyObject* steps);

}  // namespace cpu
}  // namespace bitkernels
