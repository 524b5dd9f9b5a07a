// policy_files: each entry is a file, or a directory whose *.yaml and *.yml files are read by
// name. A policy file holds only `policies:` and `defaults:`, walked like the main file's; its
// errors carry its own name. Errors about the entry itself point at the entry.
#include <yaml-cpp/depthguard.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "config/loader.h"

namespace corral::config::detail {

void Loader::readPolicyFiles() {
  namespace fs = std::filesystem;
  const fs::path base = fs::path(file_).parent_path();
  std::map<std::string, std::string> read;  // file -> the policy_files entry that read it
  for (const Located<std::string>& entry : policy_file_entries_) {
    fs::path p(entry.value);
    if (p.is_relative() && !base.empty()) p = base / p;
    p = p.lexically_normal();
    std::error_code ec;
    fs::file_status st = fs::status(p, ec);
    if (ec) {
      fail(entry.mark, entry.path, "cannot read " + p.string() + " (" + ec.message() + ")");
      continue;
    }
    if (fs::is_regular_file(st)) {
      readPolicyFile(p.string(), entry, &read);
      continue;
    }
    if (!fs::is_directory(st)) {
      fail(entry.mark, entry.path, "is neither a file nor a directory", quoteForError(p.string()));
      continue;
    }
    // A directory: its *.yaml and *.yml files (not hidden ones, not subdirectories), by name.
    // Symlinks are followed, so a Kubernetes ConfigMap mount works.
    cfg_.policy.dirs.push_back(p.string());
    std::vector<std::string> names;
    fs::directory_iterator it(p, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      auto ends = [&](std::string_view ext) {
        return name.size() > ext.size() &&
               name.compare(name.size() - ext.size(), ext.size(), ext.data(), ext.size()) == 0;
      };
      if (name[0] == '.' || !(ends(".yaml") || ends(".yml"))) continue;
      std::error_code ec2;
      if (fs::is_regular_file(it->path(), ec2)) names.push_back(std::move(name));
    }
    if (ec) {
      fail(entry.mark, entry.path, "cannot read " + p.string() + " (" + ec.message() + ")");
      continue;
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) readPolicyFile((p / name).string(), entry, &read);
  }
}

void Loader::readPolicyFile(const std::string& name, const Located<std::string>& entry,
                            std::map<std::string, std::string>* read) {
  if (name == std::filesystem::path(file_).lexically_normal().string()) {
    return fail(entry.mark, entry.path, "names the main config file itself", quoteForError(name));
  }
  auto [first, inserted] = read->emplace(name, entry.path);
  if (!inserted) {
    return fail(entry.mark, entry.path, name + " is already read by " + first->second);
  }
  std::string text;
  if (auto err = readWholeFile(name, &text)) {
    return fail(entry.mark, entry.path, name + ": " + *err);
  }
  cfg_.policy.files.push_back(name);
  // Marks now refer to this file; back to the main file however this function is left.
  struct Restore {
    Loader* loader;
    ~Restore() { loader->cur_file_ = loader->file_; }
  } restore{this};
  cur_file_ = name;
  int defaults_index = static_cast<int>(file_defaults_.size());
  file_defaults_.emplace_back();
  // A policy file that does not parse is reported in its own name; the others are still read.
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(text);
    if (docs.size() > 1) {
      fail(docs[1].Mark(), "(yaml)",
           "the file holds more than one YAML document; corral reads one");
    } else {
      std::vector<Key> keys = {
          {"policies", [&](const YAML::Node& k, const YAML::Node& v,
                           const std::string& p) { walkPolicies(k, v, p, defaults_index); }},
          {"defaults",
           [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
             walkDefaults(k, v, p, &file_defaults_[static_cast<size_t>(defaults_index)]);
           }},
      };
      walkMap(docs.empty() ? YAML::Node() : docs[0], "", keys);
    }
  } catch (const YAML::DeepRecursion& e) {
    fail(e.mark, "(yaml)", "nested too deeply for the YAML parser");
  } catch (const YAML::Exception& e) {
    fail(e.mark, "(yaml)", escapeMessage(e.msg));
  }
}

}  // namespace corral::config::detail
