// Starts ReDoc on /api/redoc/ without inline script (CSP: script-src 'self').
(function () {
  "use strict";
  // ReDoc's sidebar credit loads a logo from cdn.redoc.ly: nothing on this page comes from elsewhere, so the
  // image gets an empty data: URL instead, fails to load, and ReDoc drops it (the credit's text stays).
  var elsewhere = /^https?:\/\/cdn\.redoc\.ly\//;
  var setAttribute = Element.prototype.setAttribute;
  HTMLImageElement.prototype.setAttribute = function (name, value) {
    if (String(name).toLowerCase() === "src" && elsewhere.test(String(value))) {
      value = "data:,";
    }
    return setAttribute.call(this, name, value);
  };
  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) {
      src.set.call(this, elsewhere.test(String(value)) ? "data:," : value);
    },
  });
  var container = document.getElementById("redoc-container");
  var options = JSON.parse(document.getElementById("redoc-options").textContent);
  window.Redoc.init(container.dataset.schemaUrl, options, container);
})();
