// Loading a wasm module in a mini program: WXWebAssembly.instantiate(path, imports) takes a
// path inside the code package (not bytes, not a URL); '.wasm.br' from base library 2.14.0.
// Douyin has the same API as TTWebAssembly.

/**
 * An init(options) that instantiates `file` once, from options.wasmPath or from where DevTools'
 * "构建 npm" puts it, with wasm-bindgen's bundler-target glue `glue` as the module's imports
 * (named `importName`, the glue file the wasm was generated against); `bind(glue)` runs once
 * it is ready.
 */
export function wasmLoader(file, importName, glue, bind) {
  var defaultPath = '/miniprogram_npm/chunkwise/' + file;
  var loaded = false;
  var loading = null;
  return function init(options) {
    if (loaded) return Promise.resolve();
    if (loading === null) {
      var wasmPath = (options && options.wasmPath) || defaultPath;
      var api = typeof WXWebAssembly !== 'undefined' ? WXWebAssembly : typeof TTWebAssembly !== 'undefined' ? TTWebAssembly : null;
      if (api === null) {
        return Promise.reject(new Error('chunkwise: WXWebAssembly is not available (WeChat base library 2.13.0+ is needed)'));
      }
      var imports = {};
      imports[importName] = glue;
      loading = Promise.resolve()
        .then(function () {
          return api.instantiate(wasmPath, imports);
        })
        .then(function (result) {
          var instance = result.instance || result;
          glue.__wbg_set_wasm(instance.exports);
          instance.exports.__wbindgen_start();
          bind(glue);
          loaded = true;
        })
        .catch(function (e) {
          loading = null;
          throw new Error('chunkwise: could not load ' + wasmPath + ' (' + (e && e.message ? e.message : e) + '); pass init({wasmPath}) with the package path of ' + file);
        });
    }
    return loading;
  };
}
