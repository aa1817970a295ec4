// Classify one image with a dense-edge OpenVINO engine bundle and print the top-k classes.
//
//   dense_edge_openvino BUNDLE_DIR IMAGE.pgm|IMAGE.ppm [TOP_K]
//
// Output, one line per class, best first:  <index> <label> <probability>
#include <openvino/openvino.hpp>

#include <cstdio>
#include <iostream>

#include "../common/bundle_io.hpp"

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

        // The engine's own runtime settings (precision hint, performance hint, threads).
        ov::AnyMap config;
        for (const auto& [key, values] : dense_edge::read_key_values(bundle + "/openvino.txt"))
            if (!values.empty()) config[key] = values[0];

        ov::Core core;
        auto compiled = core.compile_model(bundle + "/model.xml", "CPU", config);
        auto request = compiled.create_infer_request();
        ov::Tensor input(ov::element::f32, {1, static_cast<size_t>(pre.channels()), static_cast<size_t>(pre.height),
                                            static_cast<size_t>(pre.width)},
                         const_cast<float*>(tensor.data()));
        request.set_input_tensor(input);
        request.infer();
        const ov::Tensor output = request.get_output_tensor();
        const float* logits = output.data<const float>();
        for (const auto& [index, prob] : dense_edge::top_k(logits, output.get_size(), k))
            std::printf("%d %s %.6f\n", index, labels.at(index).c_str(), prob);
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
