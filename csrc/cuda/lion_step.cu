// bitkernels::lion_step on CUDA (torch-free launcher; bindings.cpp calls it).
#include "step_kernel.cuh"

namespace bitkernels {
namespace cuda {

cudaError_t launch_lion_step(const StepLaunch& args, const LionHyper& h, cudaStream_t stream) {
  return launch_for_format<LionElement<>>(args, h, stream);
}

}  // namespace cuda
}  // namespace bitkernels
