#include "repo/coverage.hpp"

#include <mutex>

#include "parallel/parallel_for.hpp"

namespace pixserve::repo {

sky::Moc coverage_moc(const std::vector<DatasetRecord>& records, int order, unsigned threads) {
  sky::Moc moc(order);
  std::mutex mutex;
  parallel::parallel_for(records.size(), threads, [&](std::size_t i) {
    if (!records[i].footprint) return;
    const auto one = sky::moc_of(*records[i].footprint, order);
    const std::lock_guard lock(mutex);
    moc.add(one);
  });
  return moc;
}

sky::StMoc coverage_stmoc(const std::vector<DatasetRecord>& records, int time_order, int space_order,
                          unsigned threads) {
  sky::StMoc st(time_order, space_order);
  std::vector<std::optional<sky::Moc>> spaces(records.size());
  parallel::parallel_for(records.size(), threads, [&](std::size_t i) {
    const auto& r = records[i];
    if (r.footprint && r.t_min && r.t_max) spaces[i] = sky::moc_of(*r.footprint, space_order);
  });
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (spaces[i]) st.add(*records[i].t_min, *records[i].t_max, *spaces[i]);
  }
  return st;
}

}  // namespace pixserve::repo
