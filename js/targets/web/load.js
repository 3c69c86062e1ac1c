// Loading a wasm module in a browser through wasm-bindgen's web-target glue, which fetches
// the .wasm next to it (or options.wasmUrl) and instantiates it streaming.

/** An init(options) that loads the glue's module once; a failed load may be retried. */
export function wasmLoader(initGlue, glue, bind) {
  var loading = null;
  return function init(options) {
    if (loading === null) {
      var arg = options && options.wasmUrl ? { module_or_path: options.wasmUrl } : undefined;
      loading = initGlue(arg).then(function () {
        bind(glue);
      });
      loading.catch(function () {
        loading = null;
      });
    }
    return loading;
  };
}
