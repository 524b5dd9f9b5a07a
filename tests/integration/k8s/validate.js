// Validates Kubernetes objects against the API's schemas (npm kubernetes-models, pinned in
// package.json). Run by ../test_deploy_files.py:
//
//   node validate.js < objects.json      (a JSON array of objects, as parsed from the YAML)
//
// Prints a JSON array with one entry per object: {kind, name, errors: [...]}; exits 0 when every
// list is empty, 1 otherwise.
//
// The models' schemas check types, enums and required fields but allow unknown fields (as the
// API server's non-strict decoding does). A misspelt field (`seccompProfle`) would then pass
// silently and the setting be lost, so unknown fields are found here too: the object is wrapped
// in a Proxy that records which properties the compiled validator reads. It reads every property
// its schema defines; a key of an object it inspected but never read is a field the schema does
// not have. Objects the validator does not look into at all (free-form maps) are not judged.
"use strict";

const fs = require("fs");
const path = require("path");

// apiVersion -> the models' module path.
function modulePath(apiVersion) {
  return "kubernetes-models/" + apiVersion;
}

// The compiled schema function itself (the model's validate() deep-copies the object first, so
// it would read every key): _schemas/IoK8sApi<Group><Version><Kind>.js, group "core" for "v1".
function schemaFunction(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["core", apiVersion];
  const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
  const name = "IoK8sApi" + cap(group.split(".")[0]) + cap(version) + kind;
  // Not among the package's exports: required by path.
  return require(path.join(__dirname, "node_modules", "kubernetes-models", "_schemas", name + ".js"))
    .validate;
}

function tracked(value, path, reads) {
  if (value === null || typeof value !== "object") return value;
  const read = new Set();
  reads.push({ path, value, read });
  return new Proxy(value, {
    get(target, prop, receiver) {
      if (typeof prop === "string") read.add(prop);
      const v = Reflect.get(target, prop, receiver);
      if (typeof prop !== "string" || !Object.prototype.hasOwnProperty.call(target, prop)) {
        return v;
      }
      return tracked(v, path + "/" + prop, reads);
    },
  });
}

function unknownFields(obj, validateFn) {
  const reads = [];
  const root = tracked(obj, "", reads);
  try {
    validateFn(root);
  } catch (e) {
    // Schema errors are reported by check(); what was read up to here still counts.
  }
  const out = [];
  for (const { path, value, read } of reads) {
    if (Array.isArray(value) || read.size === 0) continue;
    for (const key of Object.keys(value)) {
      if (!read.has(key)) out.push(`${path}/${key}: unknown field`);
    }
  }
  return out;
}

function check(obj) {
  const kind = obj && obj.kind;
  const name = obj && obj.metadata && obj.metadata.name;
  const errors = [];
  let Model;
  try {
    Model = require(modulePath(obj.apiVersion))[kind];
  } catch (e) {
    Model = undefined;
  }
  if (typeof Model !== "function") {
    return { kind, name, errors: [`no schema for apiVersion ${obj.apiVersion} kind ${kind}`] };
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    errors.push(String(e.message || e));
  }
  // The schema function on the tracked object: its reads show unknown fields.
  let fn;
  try {
    fn = schemaFunction(obj.apiVersion, kind);
  } catch (e) {
    return { kind, name, errors: [...errors, `no schema function for ${kind}: ${e.message}`] };
  }
  errors.push(...unknownFields(obj, fn));
  return { kind, name, errors };
}

const objects = JSON.parse(fs.readFileSync(0, "utf8"));
const results = objects.map(check);
process.stdout.write(JSON.stringify(results, null, 2) + "\n");
process.exit(results.every((r) => r.errors.length === 0) ? 0 : 1);
