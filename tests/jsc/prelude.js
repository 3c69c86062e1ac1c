// JavaScriptCore as a mini program's logic layer (prepended to every script run by run.js).
//
// On an iPhone, WeChat runs the mini program's JS in JavaScriptCore without JIT. The `jsc`
// shell here is the same engine; this prelude makes it look like that realm to the package:
// - `WXWebAssembly.instantiate(path, imports)` takes a package path (the `.wasm.br` the
//   package ships is read decompressed, as WeChat hands it to the engine);
// - no `WebAssembly`, `TextDecoder`, `TextEncoder` or `fetch` (the shell has no encoder or
//   fetch; `WebAssembly` is taken away once the shim holds it);
// - `console` on top of the shell's `print`; CommonJS modules through `JSC.require`.
// What the shell gives scripts besides: `readFile(path, 'binary')`, `preciseTime()` (seconds),
// `print`. `JSC.root` is the repository, `JSC.args` the arguments after `--`, `JSC.fixtures`
// the files below tests/fixtures (relative to the root).
var JSC = (function (global, shellArgs) {
  'use strict';
  var nativeWasm = global.WebAssembly;
  var config = __JSC_CONFIG__;
  delete global.WebAssembly;

  global.WXWebAssembly = {
    instantiate: function (path, imports) {
      if (typeof path !== 'string') return Promise.reject(new TypeError('WXWebAssembly.instantiate takes a package path, got ' + typeof path));
      var file = config.wasmDir + '/' + path.replace(/^\//, '').replace(/\.br$/, '');
      var bytes;
      try {
        bytes = readFile(file, 'binary');
      } catch (e) {
        return Promise.reject(new Error('no such file in the package: ' + path));
      }
      return nativeWasm.instantiate(bytes, imports);
    },
  };

  // Without JIT this engine stands in for WeChat on iOS, so the realm says what WeChat on
  // iOS says about the platform (the decoder reads it to choose its UTF-8 path).
  if (!jscOptions().useJIT) {
    global.wx = {
      getDeviceInfo: function () {
        return { platform: 'ios' };
      },
    };
  }

  if (typeof global.console === 'undefined') {
    var line = function () {
      print(Array.prototype.map.call(arguments, String).join(' '));
    };
    global.console = { log: line, info: line, warn: line, error: line, debug: line };
  }

  var factories = {};
  var cache = {};
  function define(name, factory) {
    factories[name] = factory;
  }
  function resolve(from, spec) {
    if (spec.charAt(0) !== '.') return spec;
    var parts = from.split('/').slice(0, -1);
    spec.split('/').forEach(function (p) {
      if (p === '..') parts.pop();
      else if (p !== '.') parts.push(p);
    });
    return parts.join('/');
  }
  function load(name) {
    if (Object.prototype.hasOwnProperty.call(cache, name)) return cache[name].exports;
    var factory = factories[name];
    if (!factory) throw new Error('JSC.require: no module ' + name);
    var module = { exports: {} };
    cache[name] = module;
    factory.call(module.exports, module, module.exports, function (spec) {
      return load(resolve(name, spec));
    });
    return module.exports;
  }

  var failures = 0;
  return {
    root: config.root,
    fixtures: config.fixtures,
    args: Array.prototype.slice.call(shellArgs),
    define: define,
    require: load,
    /** The file's bytes, as onChunkReceived would hand them: one ArrayBuffer. */
    readBytes: function (path) {
      var b = readFile(path, 'binary');
      var ab = new ArrayBuffer(b.length);
      new Uint8Array(ab).set(b);
      return ab;
    },
    readText: function (path) {
      return readFile(path);
    },
    now: function () {
      return preciseTime() * 1000;
    },
    fail: function (message) {
      failures++;
      print('FAIL ' + message);
    },
    /** Ends the script: run.js passes only when this prints its all-clear. */
    finish: function (what) {
      print(failures === 0 ? 'jsc: ok' + (what ? ' (' + what + ')' : '') : 'jsc: ' + failures + ' failure(s)');
    },
    failures: function () {
      return failures;
    },
  };
})(this, typeof arguments !== "undefined" ? arguments : []);
