// The near-cache store: an intrusive hash table and LRU list of entries allocated in one piece,
// the in-flight fill records that make tickets cancellable, and eviction under the store's and
// the shared budget's caps (near_store.h has the picture and the coherence argument).
#include "proxy/nearcache/near_store.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <limits>
#include <new>

namespace corral::nearcache {

// The key's and the reply's bytes follow the header in the same allocation.
struct NearStore::Entry : Link {
  Entry* chain;  // next entry of the same bucket
  uint64_t hash;
  int64_t expires_ms;
  uint32_t key_len;
  uint32_t reply_len;

  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  std::string_view key() const { return {data(), key_len}; }
  std::string_view reply() const { return {data() + key_len, reply_len}; }
  size_t bytes() const { return size_t{key_len} + reply_len + kEntryOverhead; }
};

namespace {

uint64_t hashOf(std::string_view key) { return std::hash<std::string_view>{}(key); }

}  // namespace

void NearStore::unlinkLru(Link* l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
}

void NearStore::pushFront(Link* l) {
  l->prev = &lru_;
  l->next = lru_.next;
  lru_.next->prev = l;
  lru_.next = l;
}

SharedBudget::~SharedBudget() { assert(stores_.empty() && "a SharedBudget outlived by a store"); }

NearStore* SharedBudget::largest(NearStore* self) const {
  NearStore* best = self != nullptr && self->stats_.entries > 0 ? self : nullptr;
  for (NearStore* s : stores_) {
    if (s->stats_.entries > 0 && (best == nullptr || s->stats_.bytes > best->stats_.bytes)) {
      best = s;
    }
  }
  return best;
}

NearStore::NearStore(const StoreOptions& options, SharedBudget* budget)
    : policy_(options.policy),
      max_bytes_(options.max_bytes),
      entry_limit_(options.max_entry_bytes),
      budget_(budget) {
  static_assert(sizeof(Entry) <= 48, "kEntryOverhead counts a 48-byte entry header");
  clampEntryBytes();
  if (budget_ != nullptr) budget_->stores_.push_back(this);
  const size_t expected =
      options.expected_entries != 0 ? options.expected_entries : options.max_bytes / 256;
  if (policy_ == Policy::kTinyLfu) sketch_ = std::make_unique<FrequencySketch>(expected);
  // Sized for the expected entries up front, so a warm store does not rehash.
  buckets_.assign(std::bit_ceil(std::max<size_t>(expected, 16)), nullptr);
}

NearStore::~NearStore() {
  dropAll();
  if (budget_ != nullptr) std::erase(budget_->stores_, this);
}

NearStore::Entry* NearStore::find(std::string_view key, uint64_t hash) const {
  for (Entry* e = buckets_[hash & (buckets_.size() - 1)]; e != nullptr; e = e->chain) {
    if (e->hash == hash && e->key() == key) return e;
  }
  return nullptr;
}

void NearStore::grow() {
  std::vector<Entry*> bigger(buckets_.size() * 2, nullptr);
  for (Entry* head : buckets_) {
    while (head != nullptr) {
      Entry* next = head->chain;
      Entry*& b = bigger[head->hash & (bigger.size() - 1)];
      head->chain = b;
      b = head;
      head = next;
    }
  }
  buckets_.swap(bigger);
  sweep_cursor_ &= buckets_.size() - 1;
}

void NearStore::insert(Entry* e) {
  if (stats_.entries + 1 > buckets_.size()) grow();
  Entry*& b = buckets_[e->hash & (buckets_.size() - 1)];
  e->chain = b;
  b = e;
  pushFront(e);
  stats_.bytes += e->bytes();
  ++stats_.entries;
  if (budget_ != nullptr) budget_->used_bytes_ += e->bytes();
}

void NearStore::drop(Entry* e) {
  Entry** p = &buckets_[e->hash & (buckets_.size() - 1)];
  while (*p != e) p = &(*p)->chain;
  *p = e->chain;
  unlinkLru(e);
  stats_.bytes -= e->bytes();
  --stats_.entries;
  if (budget_ != nullptr) budget_->used_bytes_ -= e->bytes();
  e->~Entry();
  ::operator delete(e);
}

void NearStore::dropAll() {
  for (Entry*& head : buckets_) {
    while (head != nullptr) {
      Entry* next = head->chain;
      if (budget_ != nullptr) budget_->used_bytes_ -= head->bytes();
      head->~Entry();
      ::operator delete(head);
      head = next;
    }
  }
  lru_.prev = lru_.next = &lru_;
  stats_.bytes = 0;
  stats_.entries = 0;
}

void NearStore::clampEntryBytes() {
  // An entry that cannot fit would empty the store (or the whole budget) and still not fit.
  max_entry_bytes_ =
      std::min({entry_limit_, max_bytes_, size_t{std::numeric_limits<uint32_t>::max()}});
  if (budget_ != nullptr) max_entry_bytes_ = std::min(max_entry_bytes_, budget_->max_bytes_);
}

void NearStore::shrinkTo(size_t target) {
  while (stats_.bytes > target) {
    Entry* victim = lruVictim();
    if (victim == nullptr) break;
    drop(victim);
    ++stats_.evictions;
  }
}

void NearStore::setMaxBytes(size_t max_bytes) {
  max_bytes_ = max_bytes;
  clampEntryBytes();
  shrinkTo(max_bytes_);
}

void SharedBudget::setMaxBytes(size_t max_bytes) {
  max_bytes_ = max_bytes;
  for (NearStore* s : stores_) s->clampEntryBytes();
  while (used_bytes_ > max_bytes_) {
    NearStore* s = largest(nullptr);
    if (s == nullptr || s->stats_.entries == 0) break;
    s->shrinkTo(s->stats_.bytes - 1);  // one entry at a time: the largest may change
  }
}

NearStore::Entry* NearStore::lruVictim() const {
  return lru_.prev == &lru_ ? nullptr : static_cast<Entry*>(lru_.prev);
}

std::optional<std::string_view> NearStore::lookup(std::string_view key, int64_t now_ms) {
  const uint64_t hash = hashOf(key);
  if (sketch_) sketch_->record(hash);
  Entry* e = find(key, hash);
  if (e == nullptr) {
    ++stats_.misses;
    return std::nullopt;
  }
  if (e->expires_ms <= now_ms) {
    drop(e);
    ++stats_.expirations;
    ++stats_.misses;
    return std::nullopt;
  }
  if (lru_.next != e) {
    unlinkLru(e);
    pushFront(e);
  }
  ++stats_.hits;
  return e->reply();
}

FillTicket NearStore::beginFill(std::string_view key) {
  auto it = pending_.find(key);
  if (it == pending_.end()) it = pending_.emplace(key, Pending{++next_generation_, 0}).first;
  ++it->second.in_flight;
  ++stats_.fills_in_flight;
  return {it->second.generation, epoch_};
}

// True if the ticket was not cancelled. Releases its share of the key's in-flight record.
bool NearStore::settle(const FillTicket& ticket, std::string_view key) {
  // A ticket of an older epoch: invalidateAll already freed its record (and reset the gauge);
  // a record of the key now, if any, belongs to fills of the new epoch and is left alone.
  if (ticket.epoch != epoch_) return false;
  auto it = pending_.find(key);
  // No record: the ticket was settled already (a caller bug). Refuse, as stale is the one
  // answer that cannot serve a wrong value.
  if (it == pending_.end()) return false;
  const bool valid = it->second.generation == ticket.generation;
  if (--it->second.in_flight == 0) pending_.erase(it);
  --stats_.fills_in_flight;
  return valid;
}

void NearStore::abandon(const FillTicket& ticket, std::string_view key) { settle(ticket, key); }

bool NearStore::makeRoom(uint64_t hash, size_t need, int64_t now_ms, bool judged) {
  for (;;) {
    NearStore* from = nullptr;
    if (stats_.bytes + need > max_bytes_) {
      from = this;
    } else if (budget_ != nullptr && budget_->used_bytes_ + need > budget_->max_bytes_) {
      // Under our own cap but not the shared one: take from whoever holds the most, so that a
      // store that filled the budget first does not keep it from the others.
      from = budget_->largest(this);
    } else {
      return true;
    }
    // The caps and max_entry_bytes are such that the over-full store has something to give.
    Entry* victim = from->lruVictim();
    assert(victim != nullptr);
    if (victim->expires_ms <= now_ms) {
      // Dead anyway: no contest.
      from->drop(victim);
      ++from->stats_.expirations;
      continue;
    }
    // TinyLFU judges against the first live victim only; the replies of one policy are of
    // similar sizes, so it is usually the only one. A victim in a store without a sketch counts
    // as never asked for.
    if (!judged && sketch_) {
      judged = true;
      const uint32_t victim_freq = from->sketch_ ? from->sketch_->estimate(victim->hash) : 0;
      if (sketch_->estimate(hash) <= victim_freq) return false;
    }
    from->drop(victim);
    ++from->stats_.evictions;
  }
}

FillResult NearStore::complete(const FillTicket& ticket, std::string_view key,
                               std::string_view reply, int64_t expires_ms, int64_t now_ms) {
  if (!settle(ticket, key)) {
    ++stats_.fills_cancelled;
    return FillResult::kCancelled;
  }
  if (expires_ms <= now_ms) return FillResult::kExpired;
  const size_t need = entryBytes(key, reply);
  if (need > max_entry_bytes_) {
    ++stats_.too_large;
    return FillResult::kTooLarge;
  }
  const uint64_t hash = hashOf(key);
  // A second fill of the key (both tickets valid, so both read the same value) or a refill:
  // the newer reply and expiry win, without a second admission (the key got in once already).
  Entry* old = find(key, hash);
  if (old != nullptr) drop(old);
  if (!makeRoom(hash, need, now_ms, /*judged=*/old != nullptr)) {
    ++stats_.admissions_rejected;
    return FillResult::kRejected;
  }
  void* mem = ::operator new(sizeof(Entry) + key.size() + reply.size());
  Entry* e = new (mem) Entry{};
  e->hash = hash;
  e->expires_ms = expires_ms;
  e->key_len = static_cast<uint32_t>(key.size());
  e->reply_len = static_cast<uint32_t>(reply.size());
  std::memcpy(e->data(), key.data(), key.size());
  std::memcpy(e->data() + key.size(), reply.data(), reply.size());
  insert(e);
  ++stats_.stored;
  return FillResult::kStored;
}

bool NearStore::worthFilling(std::string_view key) const {
  if (!sketch_ || stats_.entries == 0) return true;
  const size_t typical = stats_.bytes / stats_.entries;
  const bool room = stats_.bytes + typical <= max_bytes_ &&
                    (budget_ == nullptr || budget_->used_bytes_ + typical <= budget_->max_bytes_);
  if (room) return true;
  const Entry* victim = lruVictim();
  return victim == nullptr || sketch_->estimate(hashOf(key)) > sketch_->estimate(victim->hash);
}

bool NearStore::dropEntry(std::string_view key) {
  Entry* e = find(key, hashOf(key));
  if (e == nullptr) return false;
  drop(e);
  ++stats_.invalidations;
  return true;
}

bool NearStore::invalidate(std::string_view key) {
  bool affected = dropEntry(key);
  if (auto it = pending_.find(key); it != pending_.end()) {
    // Every ticket of the key carries the old generation; a fill begun after this gets the new.
    it->second.generation = ++next_generation_;
    affected = true;
  }
  return affected;
}

void NearStore::invalidateAll() {
  stats_.invalidations += stats_.entries;
  ++stats_.flushes;
  dropAll();
  // Tickets carry the epoch, so the records can go now: this also frees the records of fills
  // whose replies will never come (the connection that carried them is the one that was lost).
  ++epoch_;
  pending_.clear();
  stats_.fills_in_flight = 0;
}

size_t NearStore::sweep(int64_t now_ms, size_t max_buckets) {
  size_t dropped = 0;
  for (size_t i = 0; i < max_buckets && stats_.entries > 0; ++i) {
    Entry* e = buckets_[sweep_cursor_];
    while (e != nullptr) {
      Entry* next = e->chain;
      if (e->expires_ms <= now_ms) {
        drop(e);
        ++stats_.expirations;
        ++dropped;
      }
      e = next;
    }
    sweep_cursor_ = (sweep_cursor_ + 1) & (buckets_.size() - 1);
  }
  return dropped;
}

}  // namespace corral::nearcache
