// One worker thread's near cache for one policy: replies kept in memory, dropped the moment Redis
// (or a write through corral) says their key changed, bounded in bytes.
//
//   lookup(key, now) ---------------------------------> hit: the reply's bytes (LRU: to the front)
//        \ miss (or expired: dropped)
//         beginFill(key) -> ticket {generation, epoch}    (before the read goes upstream)
//              ... upstream reply ...            invalidate(key)   -> entry dropped, the key's
//         complete(ticket, key, reply, expiry)                          tickets cancelled
//              | ticket still valid? (else kCancelled)  invalidateAll() -> everything dropped,
//              | room? evict LRU victims; TinyLFU:                        every ticket cancelled
//              |   admit only if the key is asked for more often than the first victim
//              v
//         entry {key, reply, expires_ms} in the hash table and the LRU list
//
// Coherence: an entry is stored only from a fill whose ticket no invalidation touched between
// beginFill and complete, so a reply read before a change can never be stored after the change's
// invalidation. Per key, the ticket state lives only while a fill of that key is in flight (one
// record per key with fills in flight: its generation and how many fills hold it); the global
// epoch cancels all tickets at once. Nothing is kept for a key once its fills have settled.
//
// Not thread-safe: one store per worker thread (and per policy), touched only by that thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/nearcache/frequency_sketch.h"

namespace corral::nearcache {

class NearStore;

// How a full store chooses between a new reply and the entries it would evict.
enum class Policy : uint8_t {
  kLru,      // always admit; evict the least recently used
  kTinyLfu,  // admit only if the key's recent frequency beats the first LRU victim's
};

struct StoreOptions {
  size_t max_bytes = 64u << 20;  // entries' bytes (entryBytes) never exceed this
  // Larger replies are not cached (kTooLarge); clamped to max_bytes and to the shared budget.
  size_t max_entry_bytes = 1u << 20;
  Policy policy = Policy::kTinyLfu;
  // Sizes the TinyLFU sketch (about 10 bytes per entry, allocated once) and the initial hash
  // table; 0: max_bytes / 256 (a GET reply of ~100 bytes with its key and the overhead).
  size_t expected_entries = 0;
};

// A byte cap shared by several stores of one thread (one store per policy, one budget per
// worker). When a store must make room under the shared cap and is not itself over its own
// max_bytes, it evicts from the member holding the most bytes, which may be another store.
// Must outlive its stores; not thread-safe (the stores' thread only).
class SharedBudget {
 public:
  explicit SharedBudget(size_t max_bytes) : max_bytes_(max_bytes) {}
  SharedBudget(const SharedBudget&) = delete;
  SharedBudget& operator=(const SharedBudget&) = delete;
  ~SharedBudget();

  size_t maxBytes() const { return max_bytes_; }
  size_t usedBytes() const { return used_bytes_; }
  size_t stores() const { return stores_.size(); }
  // A new cap (a reload): the largest members give entries back until the budget fits under it.
  void setMaxBytes(size_t max_bytes);

 private:
  friend class NearStore;
  // The member to evict from: the one holding the most bytes; on a tie, `self` (the store that
  // needs the room gives way first; may be null). Null when every member is empty.
  NearStore* largest(NearStore* self) const;

  size_t max_bytes_;
  size_t used_bytes_ = 0;
  std::vector<NearStore*> stores_;
};

// Returned by beginFill, handed back to complete or abandon exactly once. A plain value.
struct FillTicket {
  uint64_t generation = 0;  // the key's fill generation when the fill began
  uint64_t epoch = 0;       // the store's epoch when the fill began
};

enum class FillResult : uint8_t {
  kStored,
  kCancelled,  // an invalidation came between beginFill and complete: the reply may be stale
  kExpired,    // expires_ms <= now_ms
  kTooLarge,   // entryBytes over max_entry_bytes
  kRejected,   // TinyLFU admission: the key is not asked for more often than the victim
};

// Counters since construction; bytes, entries and fills_in_flight are gauges.
struct NearStats {
  uint64_t hits = 0;
  uint64_t misses = 0;  // lookups that found nothing, or an expired entry
  uint64_t stored = 0;
  uint64_t evictions = 0;      // entries dropped to make room (here, or by a store of the budget)
  uint64_t expirations = 0;    // expired entries dropped (lookup, sweep, or as an eviction victim)
  uint64_t invalidations = 0;  // entries dropped by invalidate or invalidateAll
  uint64_t flushes = 0;        // invalidateAll calls
  uint64_t fills_cancelled = 0;
  uint64_t admissions_rejected = 0;
  uint64_t too_large = 0;
  size_t bytes = 0;  // sum of entryBytes over the entries
  size_t entries = 0;
  size_t fills_in_flight = 0;  // tickets begun and not yet settled in the current epoch
};

class NearStore {
 public:
  // Charged per entry on top of its key and reply: the entry header (48 bytes: LRU links, hash
  // chain, hash, expiry, lengths), its share of the hash table (up to 2 bucket pointers at load
  // factor 1/2..1) and the allocator's header and rounding (16 + up to 15 on glibc).
  static constexpr size_t kEntryOverhead = 96;

  // Registers with `budget` (may be null) until destroyed.
  explicit NearStore(const StoreOptions& options, SharedBudget* budget = nullptr);
  NearStore(const NearStore&) = delete;
  NearStore& operator=(const NearStore&) = delete;
  ~NearStore();

  // The reply cached for `key` if it has not expired at now_ms (monotonic ms). The view stays
  // valid until the next non-const call on this store or on any store sharing its budget. Counts
  // the access for TinyLFU, hit or miss. Allocates nothing.
  std::optional<std::string_view> lookup(std::string_view key, int64_t now_ms);

  // Call before the read of `key` is sent upstream; hand the ticket to complete (the reply
  // arrived) or abandon (it will not). Allocates the key's in-flight record when it is the key's
  // only fill. A ticket survives no invalidate(key) and no invalidateAll.
  FillTicket beginFill(std::string_view key);

  // Whether a fill of `key` (just missed: lookup counted it) would likely be admitted: there is
  // room, or TinyLFU rates the key above the least recently used entry. A hint to skip the read
  // on the tracking connection for keys that would be refused anyway; complete() decides.
  bool worthFilling(std::string_view key) const;

  // Stores `reply` (the exact bytes to serve, copied once into the entry) for `key` until
  // expires_ms, unless the ticket was cancelled, the reply expired, is too large, or admission
  // refuses it. Replaces an entry the key already has. Settles the ticket.
  FillResult complete(const FillTicket& ticket, std::string_view key, std::string_view reply,
                      int64_t expires_ms, int64_t now_ms);
  // Settles a ticket whose fill failed; stores nothing.
  void abandon(const FillTicket& ticket, std::string_view key);

  // Redis (a tracking push) or corral (a write it forwards) says `key` changed: drops its entry
  // and cancels every outstanding ticket of the key. For read-your-writes, a write calls this
  // before it is sent and again when its reply arrives (cancelling fills begun in between, which
  // may have read the value from before the write). True if an entry or a ticket was affected.
  bool invalidate(std::string_view key);
  // Drops key's entry only; its fills in flight are left alone. For an invalidation that
  // arrives on the connection the fills read on, ahead of their replies: those reads ran after
  // the change (the caller cancels the fills whose replies came before it: abandon).
  bool dropEntry(std::string_view key);
  // FLUSHALL/FLUSHDB, a lost or new tracking connection, a failover, a reload: drops every entry
  // and cancels every outstanding ticket (a new epoch); frees the in-flight records too.
  void invalidateAll();

  // A new max_bytes (a reload): least recently used entries are evicted until the store fits.
  // (The TinyLFU sketch and the hash table keep the size they were made with.)
  void setMaxBytes(size_t max_bytes);

  // Drops expired entries among the next `max_buckets` hash buckets (a cursor that wraps around),
  // for the caller's timer; about one entry per bucket. Returns the entries dropped.
  size_t sweep(int64_t now_ms, size_t max_buckets);

  const NearStats& stats() const { return stats_; }
  // Keys with fills in flight: the ticket state's whole memory (tests check it returns to 0).
  size_t fillRecords() const { return pending_.size(); }
  Policy policy() const { return policy_; }
  size_t maxBytes() const { return max_bytes_; }
  // What an entry of this key and reply costs against max_bytes.
  static size_t entryBytes(std::string_view key, std::string_view reply) {
    return key.size() + reply.size() + kEntryOverhead;
  }

 private:
  friend class SharedBudget;
  struct Link {
    Link* prev;
    Link* next;
  };
  struct Entry;
  struct Pending {
    uint64_t generation;
    uint32_t in_flight;
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  static void unlinkLru(Link* l);
  void pushFront(Link* l);  // most recently used
  Entry* find(std::string_view key, uint64_t hash) const;
  void insert(Entry* e);
  void grow();
  // Unlinks and frees `e`, updating bytes (here and in the budget) and entries.
  void drop(Entry* e);
  void dropAll();
  bool settle(const FillTicket& ticket, std::string_view key);
  // Evicts until `need` more bytes fit under both caps; false if TinyLFU (unless `judged`)
  // prefers the first live victim.
  bool makeRoom(uint64_t hash, size_t need, int64_t now_ms, bool judged);
  Entry* lruVictim() const;
  // max_entry_bytes_ from the options' limit and the caps in force.
  void clampEntryBytes();
  // Evicts least recently used entries until bytes <= target.
  void shrinkTo(size_t target);

  Policy policy_;
  size_t max_bytes_;
  size_t max_entry_bytes_;
  size_t entry_limit_;  // StoreOptions::max_entry_bytes
  SharedBudget* budget_;
  std::unique_ptr<FrequencySketch> sketch_;  // kTinyLfu only
  std::vector<Entry*> buckets_;              // chains through Entry::chain; a power of two
  Link lru_{&lru_, &lru_};                   // lru_.next most recent, lru_.prev the victim
  size_t sweep_cursor_ = 0;
  uint64_t epoch_ = 1;
  uint64_t next_generation_ = 0;
  std::unordered_map<std::string, Pending, KeyHash, std::equal_to<>> pending_;
  NearStats stats_;
};

}  // namespace corral::nearcache
