#pragma once
// A byte buffer whose growth does not zero-fill (std::vector<char>::resize does, and on the
// data path that memset cost as much as a copy): for buffers that are always written before
// they are read (socket reads, BIO reads).

#include <cstddef>
#include <cstring>
#include <memory>

namespace zm {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  explicit ByteBuffer(size_t size) { resize(size); }

  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Grows keeping the first size() bytes; new bytes are uninitialized.
  void resize(size_t n) {
    if (n > cap_) {
      size_t cap = cap_ == 0 ? n : cap_;
      while (cap < n) cap *= 2;
      auto bigger = std::make_unique_for_overwrite<char[]>(cap);
      if (size_ > 0) std::memcpy(bigger.get(), data_.get(), size_);
      data_ = std::move(bigger);
      cap_ = cap;
    }
    size_ = n;
  }
  void clear() { size_ = 0; }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t cap_ = 0;
};

}  // namespace zm
