// Parts of virtual products: the pixels of any box of a calexp or a
// difference image, computed from its inputs and the measurements kept of
// its one whole re-creation (products/recreate.hpp), without making the
// whole product. A calexp's box runs ISR on the amplifiers the box overlaps
// only; a difference image's box reads its calexp over the box (from the
// calexp's file, or as a calexp part) and warps and convolves the template
// over the box plus the kernel's reach. The pixels and the header equal, bit
// for bit, those of the whole re-created product, so a SODA cutout of a part
// is the cutout of the whole file (image::append_cutouts on an
// image::ComputedExposure).
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include "image/cutout.hpp"
#include "products/product_cache.hpp"
#include "products/recreate.hpp"
#include "repo/dataset.hpp"

namespace pixserve::products {

// A file under the product cache that lives as long as its owner (the
// header-only frames of parts); leftovers of a crash carry the cache's
// partial-file marker and go when the cache opens.
class ScratchFile {
 public:
  explicit ScratchFile(std::filesystem::path path) : path_(std::move(path)) {}
  ScratchFile(ScratchFile&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  ScratchFile& operator=(ScratchFile&&) = delete;
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  ~ScratchFile();
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

class ProductPart {
 public:
  ProductPart(std::vector<ScratchFile> scratch, image::ComputedExposure exposure)
      : scratch_(std::move(scratch)), exposure_(std::move(exposure)) {}
  // The product's header (a header-only file) and its pixels over any box.
  // pixels() throws RecreationError when an input cannot be read.
  const image::ComputedExposure& exposure() const noexcept { return exposure_; }

 private:
  std::vector<ScratchFile> scratch_;
  image::ComputedExposure exposure_;
};

// The part source of a virtual product, or nullopt when its whole file is
// the better source: it is in the cache, or its measurements are not kept
// yet (its first use makes the whole product, which keeps them). Inputs are
// checked against the recipe first (RecreationError, as for a whole
// re-creation).
std::optional<ProductPart> product_part(ProductCache& cache, const repo::DatasetRecord& record,
                                        const InputResolver& inputs);

}  // namespace pixserve::products
