// bitkernels::sgd_step on CUDA (torch-free launcher; bindings.cpp calls it).
#include "step_kernel.cuh"

namespace bitkernels {
namespace cuda {

cudaError_t launch_sgd_step(const StepLaunch& args, const SgdHyper& h, cudaStream_t stream) {
  return h.has_momentum.mask ? launch_for_format<SgdElement<true>>(args, h, stream)
                             : launch_for_format<SgdElement<false>>(args, h, stream);
}

}  // namespace cuda
}  // namespace bitkernels
