// Classify one image with a dense-edge TensorRT engine bundle (Jetson or any NVIDIA GPU).
//
//   dense_edge_tensorrt BUNDLE_DIR IMAGE.pgm|IMAGE.ppm [TOP_K]
//
// Uses the TensorRT runtime API: deserialise model.engine, bind device buffers by tensor name
// (setTensorAddress), run enqueueV3 on a CUDA stream. Works with TensorRT 10.x and 11.x.
#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

#include "../common/bundle_io.hpp"

namespace {

class Logger : public nvinfer1::ILogger {
    void log(Severity severity, const char* msg) noexcept override {
        if (severity <= Severity::kWARNING) std::cerr << "tensorrt: " << msg << "\n";
    }
};

void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " BUNDLE_DIR IMAGE.pgm|IMAGE.ppm [TOP_K]\n";
        return 2;
    }
    const std::string bundle = argv[1];
    const size_t k = argc > 3 ? std::stoul(argv[3]) : 5;
    try {
        const auto pre = dense_edge::read_preprocess(bundle);
        const auto labels = dense_edge::read_labels(bundle);
        const auto tensor = dense_edge::to_tensor(dense_edge::read_pnm(argv[2]), pre);

        std::ifstream file(bundle + "/model.engine", std::ios::binary);
        if (!file) throw std::runtime_error(bundle + "/model.engine: cannot open");
        const std::vector<char> plan((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());

        Logger logger;
        std::unique_ptr<nvinfer1::IRuntime> runtime(nvinfer1::createInferRuntime(logger));
        std::unique_ptr<nvinfer1::ICudaEngine> engine(runtime->deserializeCudaEngine(plan.data(), plan.size()));
        if (!engine)
            throw std::runtime_error("the engine does not load here (another TensorRT version or GPU): "
                                     "rebuild it on this device with the bundle's trtexec.sh");
        std::unique_ptr<nvinfer1::IExecutionContext> context(engine->createExecutionContext());

        const nvinfer1::Dims4 shape{1, pre.channels(), pre.height, pre.width};
        if (!context->setInputShape(pre.input_name.c_str(), shape))
            throw std::runtime_error("batch 1 is outside the engine's optimisation profile");
        const nvinfer1::Dims out_dims = context->getTensorShape(pre.output_name.c_str());
        size_t classes = 1;
        for (int i = 0; i < out_dims.nbDims; ++i) classes *= static_cast<size_t>(out_dims.d[i]);

        // The exported models take and return float32 (FP16 models cast inside).
        void* d_in = nullptr;
        void* d_out = nullptr;
        check(cudaMalloc(&d_in, tensor.size() * sizeof(float)), "cudaMalloc input");
        check(cudaMalloc(&d_out, classes * sizeof(float)), "cudaMalloc output");
        cudaStream_t stream;
        check(cudaStreamCreate(&stream), "cudaStreamCreate");
        check(cudaMemcpyAsync(d_in, tensor.data(), tensor.size() * sizeof(float), cudaMemcpyHostToDevice, stream),
              "copy in");
        context->setTensorAddress(pre.input_name.c_str(), d_in);
        context->setTensorAddress(pre.output_name.c_str(), d_out);
        if (!context->enqueueV3(stream)) throw std::runtime_error("enqueueV3 failed");
        std::vector<float> logits(classes);
        check(cudaMemcpyAsync(logits.data(), d_out, classes * sizeof(float), cudaMemcpyDeviceToHost, stream),
              "copy out");
        check(cudaStreamSynchronize(stream), "synchronise");
        cudaStreamDestroy(stream);
        cudaFree(d_in);
        cudaFree(d_out);

        for (const auto& [index, prob] : dense_edge::top_k(logits.data(), logits.size(), k))
            std::printf("%d %s %.6f\n", index, labels.at(index).c_str(), prob);
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
