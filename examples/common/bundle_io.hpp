// Reading a dense-edge engine bundle's sidecar files and binary PGM/PPM images, and turning an
// image into the model's input tensor exactly as the manifest's preprocessing says.
// Standard C++17 only, shared by the OpenVINO and TensorRT examples.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace dense_edge {

struct Preprocess {
    int height = 0, width = 0;
    std::string color = "RGB";          // "RGB" or "L"
    std::string channel_order = "RGB";  // "RGB" or "BGR"
    bool resize = false;                // this example takes images at (or above) input size
    bool crop = false;
    double scale = 1.0 / 255.0;
    std::vector<double> mean, std;
    std::string input_name = "images", output_name = "logits";
    int channels() const { return color == "L" ? 1 : 3; }
};

inline std::map<std::string, std::vector<std::string>> read_key_values(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot open");
    std::map<std::string, std::vector<std::string>> out;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream words(line);
        std::string key, word;
        words >> key;
        while (words >> word) out[key].push_back(word);
    }
    return out;
}

inline Preprocess read_preprocess(const std::string& bundle) {
    auto kv = read_key_values(bundle + "/preprocess.txt");
    auto get = [&](const std::string& k) -> const std::vector<std::string>& {
        auto it = kv.find(k);
        if (it == kv.end()) throw std::runtime_error("preprocess.txt: missing " + k);
        return it->second;
    };
    Preprocess p;
    p.height = std::stoi(get("input_size").at(0));
    p.width = std::stoi(get("input_size").at(1));
    p.color = get("color").at(0);
    p.channel_order = get("channel_order").at(0);
    p.resize = get("resize").at(0) != "none";
    p.crop = get("crop").at(0) == "1";
    p.scale = std::stod(get("scale").at(0));
    for (auto& v : get("mean")) p.mean.push_back(std::stod(v));
    for (auto& v : get("std")) p.std.push_back(std::stod(v));
    p.input_name = get("input_name").at(0);
    p.output_name = get("output_name").at(0);
    return p;
}

inline std::vector<std::string> read_labels(const std::string& bundle) {
    std::ifstream in(bundle + "/labels.txt");
    if (!in) throw std::runtime_error(bundle + "/labels.txt: cannot open");
    std::vector<std::string> labels;
    std::string line;
    while (std::getline(in, line)) labels.push_back(line);
    return labels;
}

struct Image {
    int height = 0, width = 0, channels = 0;
    std::vector<uint8_t> pixels;  // HWC
};

// Binary PGM (P5, grey) or PPM (P6, RGB), 8 bits per sample.
inline Image read_pnm(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open");
    std::string magic;
    in >> magic;
    if (magic != "P5" && magic != "P6") throw std::runtime_error(path + ": not a binary PGM/PPM");
    auto next_int = [&]() {
        int value;
        in >> std::ws;
        while (in.peek() == '#') {
            std::string comment;
            std::getline(in, comment);
            in >> std::ws;
        }
        in >> value;
        return value;
    };
    Image img;
    img.width = next_int();
    img.height = next_int();
    int maxval = next_int();
    if (maxval != 255) throw std::runtime_error(path + ": only 8-bit images are read");
    in.get();  // the single whitespace after the header
    img.channels = magic == "P5" ? 1 : 3;
    img.pixels.resize(static_cast<size_t>(img.width) * img.height * img.channels);
    in.read(reinterpret_cast<char*>(img.pixels.data()), static_cast<std::streamsize>(img.pixels.size()));
    if (!in) throw std::runtime_error(path + ": truncated image");
    return img;
}

// The manifest's preprocessing: colour conversion (as Pillow does it), centre crop when the
// manifest asks for one, then (x * scale - mean) / std, channels first.
inline std::vector<float> to_tensor(const Image& src, const Preprocess& p) {
    Image img = src;
    if (img.channels == 3 && p.channels() == 1) {  // Pillow's "L": ITU-R 601-2 luma
        Image grey{img.height, img.width, 1, std::vector<uint8_t>(static_cast<size_t>(img.height) * img.width)};
        for (size_t i = 0; i < grey.pixels.size(); ++i) {
            const uint8_t* rgb = &img.pixels[3 * i];
            grey.pixels[i] = static_cast<uint8_t>((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
        }
        img = grey;
    } else if (img.channels == 1 && p.channels() == 3) {
        Image rgb{img.height, img.width, 3, std::vector<uint8_t>(img.pixels.size() * 3)};
        for (size_t i = 0; i < img.pixels.size(); ++i) std::fill_n(&rgb.pixels[3 * i], 3, img.pixels[i]);
        img = rgb;
    }
    int top = 0, left = 0;
    if (img.height != p.height || img.width != p.width) {
        if (!p.crop || img.height < p.height || img.width < p.width || p.resize)
            throw std::runtime_error("image is " + std::to_string(img.height) + "x" + std::to_string(img.width) +
                                     "; this example takes images of the model's input size " +
                                     std::to_string(p.height) + "x" + std::to_string(p.width) + " (resize them first)");
        top = (img.height - p.height) / 2;
        left = (img.width - p.width) / 2;
    }
    const int c = p.channels();
    std::vector<float> out(static_cast<size_t>(c) * p.height * p.width);
    for (int ch = 0; ch < c; ++ch) {
        const int src_ch = (p.channel_order == "BGR" && c == 3) ? 2 - ch : ch;
        const float scale = static_cast<float>(p.scale);
        const float mean = static_cast<float>(p.mean.at(ch));
        const float inv_std = 1.0f / static_cast<float>(p.std.at(ch));
        for (int y = 0; y < p.height; ++y)
            for (int x = 0; x < p.width; ++x) {
                const uint8_t v = img.pixels[(static_cast<size_t>(y + top) * img.width + (x + left)) * c + src_ch];
                out[(static_cast<size_t>(ch) * p.height + y) * p.width + x] = (v * scale - mean) * inv_std;
            }
    }
    return out;
}

// Softmax, then the k best (index, probability), highest first; ties keep the lower index.
inline std::vector<std::pair<int, double>> top_k(const float* logits, size_t n, size_t k) {
    const double peak = *std::max_element(logits, logits + n);
    std::vector<double> prob(n);
    double total = 0;
    for (size_t i = 0; i < n; ++i) total += prob[i] = std::exp(static_cast<double>(logits[i]) - peak);
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return prob[a] > prob[b]; });
    std::vector<std::pair<int, double>> best;
    for (size_t i = 0; i < std::min(k, n); ++i) best.emplace_back(order[i], prob[order[i]] / total);
    return best;
}

}  // namespace dense_edge
