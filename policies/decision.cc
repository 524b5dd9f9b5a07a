#include "policies/decision.h"

namespace corral::policies {

FillPlan::Item& FillPlan::addItem() {
  if (item_count_ == items_.size()) items_.emplace_back();
  Item& it = items_[item_count_++];
  it.pos = 0;
  it.policy = nullptr;
  it.key.clear();
  it.path.clear();
  return it;
}

void FillPlan::clear() {
  policy = nullptr;
  key.clear();
  path.clear();
  with_pttl = false;
  request.clear();
  read = Read::kGet;
  field.clear();
  item_count_ = 0;
}

void Decision::clearExtras() {
  ttl_followups.clear();
  lease_deletes.clear();
  revoke.clear();
  fill.clear();
  extras_ = false;
}

}  // namespace corral::policies
