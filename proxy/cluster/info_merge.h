// INFO across a cluster: the command went to every primary (fanout.h) and each answered its own
// text; mergeInfo makes of them the one text a client expects of "the server".
//
//   "$n\r\n# Server\r\n...\r\n\r\n# Keyspace\r\ndb0:keys=3,...\r\n"      one reply per primary
//     --> the bulk's (or RESP3 verbatim's) text --> sections of "key:value" lines, and each
//         primary's fields indexed by key
//     --> the first reply's sections and lines, each field merged by its section's rule
//     --> one bulk string (verbatim "txt" when the first reply was one)
//
// The rules, by section of the first reply:
//   # Clients, # Memory, # Stats   integer fields summed over the primaries that have them
//       (connected_clients, used_memory, total_commands_processed, keyspace_hits, ...);
//       instantaneous_* rates summed (decimals written with two digits, as Redis does);
//       the largest value for one node's peaks and for what every primary holds a copy of:
//         client_recent_max_input_buffer, client_recent_max_output_buffer, latest_fork_usec,
//         current_eviction_exceeded_time, current_active_defrag_time, number_of_cached_scripts,
//         number_of_functions, number_of_libraries;
//       the first primary's for settings, flags and the machine: maxclients, maxmemory,
//         total_system_memory, active_defrag_running;
//       X_human recomputed from the merged X, in Redis's format ("1.50M"), when X was summed or
//         maxed, else the first's; ratios, percentages and strings (mem_fragmentation_ratio,
//         used_memory_peak_perc, maxmemory_policy) the first's. used_memory_peak is the sum of
//         each primary's own peak: an upper bound of the cluster's.
//   # Keyspace, # Commandstats, # Errorstats   every line of every primary: a db, command or
//       error that some primaries lack is still shown (those the first lacks are added at the end
//       of the section, in the order first met). Their "k=v,..." values are summed per subfield
//       (keys, expires, calls, usec, rejected_calls, failed_calls, count); avg_ttl is the
//       primaries' avg_ttl weighted by their expires (a primary reporting 0, not measured yet,
//       left out); usec_per_call is usec / calls again, two decimals.
//   # Cluster   the first's lines, then "corral_merged_primaries:<number of replies merged>".
//   any other (Server, Persistence, Replication, CPU, Modules, Latencystats: percentiles do not
//       add up)   the first primary's, verbatim.
// A value that does not read as the rule expects on some primary (not an integer, an overflow,
// a subfield missing) keeps the first's value as it is. Lines without ':' and lines before the
// first section come from the first reply; other replies' extra lines in sections that are not
// merged line by line are left out. Cost: linear in the total size of the replies.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace corral::cluster {

// replies: one complete INFO reply per primary, none an error (mergeReplies answers those), each
// a bulk string "$<n>\r\n<text>\r\n" or a RESP3 verbatim string "=<n>\r\ntxt:<text>\r\n".
// Appends the merged reply to *out, of the first reply's type; no replies, or one of another
// shape (a nil, an array, bytes after the frame): kBadFragmentReply (split.h).
void mergeInfo(std::span<const std::string_view> replies, std::string* out);

// The text part: texts[i] is primary i's INFO text (without RESP framing). Appends the merged
// text to *out, lines ending in "\r\n" and sections separated by an empty line, as Redis writes.
// An empty first text gives an empty text.
void mergeInfoText(std::span<const std::string_view> texts, std::string* out);

// The line mergeInfoText adds to the "# Cluster" section.
inline constexpr std::string_view kMergedPrimariesField = "corral_merged_primaries";

}  // namespace corral::cluster
