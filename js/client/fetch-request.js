// fetchRequest: the Fetch API (a browser, Node 18+) behind wx.request's shape, so that
// streamChat runs the same everywhere. It names no browser global itself: it is part of the
// mini-program build too, and is handed the fetch function to use.

/**
 * A request function with wx.request's shape (enableChunked, onHeadersReceived,
 * onChunkReceived, success, fail, complete, abort) made from the Fetch API's function and a
 * ReadableStream body, so that streamChat runs the same in a browser (or in Node 18+):
 *   streamChat({ request: fetchRequest(<the Fetch API function>), ... })
 * `timeout` is honoured when given (browsers have no cap of their own).
 */
export function fetchRequest(fetchImpl) {
  if (typeof fetchImpl !== 'function') throw new TypeError('chunkwise: fetchRequest(f) needs the Fetch API function (of the page or of Node 18+)');
  return function request(o) {
    var aborted = false;
    var finished = false;
    var headerCbs = [];
    var chunkCbs = [];
    var controller = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = null;
    var method = (o.method || 'GET').toUpperCase();
    var init = { method: method, headers: o.header || {}, cache: 'no-store' };
    if (controller !== null) init.signal = controller.signal;
    if (o.data !== undefined && method !== 'GET' && method !== 'HEAD') init.body = typeof o.data === 'string' || o.data instanceof ArrayBuffer ? o.data : JSON.stringify(o.data);
    function end(ok, res) {
      if (finished) return;
      finished = true;
      if (timer !== null) clearTimeout(timer);
      if (ok && typeof o.success === 'function') o.success(res);
      if (!ok && typeof o.fail === 'function') o.fail(res);
      if (typeof o.complete === 'function') o.complete(res);
    }
    function each(cbs, arg) {
      var list = cbs.slice();
      for (var i = 0; i < list.length; i++) list[i](arg);
    }
    function arrayBufferOf(view) {
      if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength) return view.buffer;
      return view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
    }
    if (typeof o.timeout === 'number' && o.timeout > 0) {
      timer = setTimeout(function () {
        if (finished) return;
        aborted = true;
        if (controller !== null) controller.abort();
        end(false, { errMsg: 'request:fail timeout' });
      }, o.timeout);
    }
    Promise.resolve()
      .then(function () {
        return fetchImpl(o.url, init);
      })
      .then(function (res) {
        if (aborted) return undefined;
        var header = {};
        res.headers.forEach(function (value, key) {
          header[key] = value;
        });
        each(headerCbs, { statusCode: res.status, header: header });
        var reader = o.enableChunked && res.body && typeof res.body.getReader === 'function' ? res.body.getReader() : null;
        if (reader === null) {
          return res.arrayBuffer().then(function (buf) {
            if (!aborted) end(true, { statusCode: res.status, header: header, data: buf, errMsg: 'request:ok' });
          });
        }
        var pump = function () {
          return reader.read().then(function (r) {
            if (aborted) return undefined;
            if (r.done) {
              end(true, { statusCode: res.status, header: header, data: new ArrayBuffer(0), errMsg: 'request:ok' });
              return undefined;
            }
            each(chunkCbs, { data: arrayBufferOf(r.value) });
            return pump();
          });
        };
        return pump();
      })
      .catch(function (e) {
        if (!aborted) end(false, { errMsg: 'request:fail ' + (e && e.message ? e.message : String(e)) });
      });
    return {
      abort: function () {
        if (finished) return;
        aborted = true;
        if (controller !== null) controller.abort();
        end(false, { errMsg: 'request:fail abort' });
      },
      onHeadersReceived: function (cb) {
        headerCbs.push(cb);
      },
      offHeadersReceived: function (cb) {
        headerCbs = cb === undefined ? [] : headerCbs.filter(function (f) { return f !== cb; });
      },
      onChunkReceived: function (cb) {
        chunkCbs.push(cb);
      },
      offChunkReceived: function (cb) {
        chunkCbs = cb === undefined ? [] : chunkCbs.filter(function (f) { return f !== cb; });
      },
    };
  };
}
