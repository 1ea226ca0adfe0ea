// A minimal SAMP Web Profile client (IVOA SAMP 1.3, section 5): XML-RPC over HTTP to the
// hub on localhost:21012. Only what the portal needs: register, declare metadata,
// notify every client with table.load.votable, unregister. No maintained package of
// the Web Profile exists on the registries SKVO installs from, so it is written here.
(function () {
  "use strict";
  var HUB = "http://localhost:21012/";

  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function value(v) {
    if (Array.isArray(v)) {
      return "<value><array><data>" + v.map(value).join("") + "</data></array></value>";
    }
    if (v !== null && typeof v === "object") {
      return "<value><struct>" + Object.keys(v).map(function (k) {
        return "<member><name>" + esc(k) + "</name>" + value(v[k]) + "</member>";
      }).join("") + "</struct></value>";
    }
    return "<value><string>" + esc(v) + "</string></value>";
  }
  function parse(node) {
    var child = node.firstElementChild;
    if (!child) return node.textContent;
    switch (child.tagName) {
      case "struct":
        var out = {};
        Array.prototype.forEach.call(child.children, function (m) {
          out[m.querySelector("name").textContent] = parse(m.querySelector("value"));
        });
        return out;
      case "array":
        return Array.prototype.map.call(child.querySelector("data").children, parse);
      default:
        return child.textContent;
    }
  }
  function call(method, params) {
    var body = "<?xml version=\"1.0\"?><methodCall><methodName>" + method +
      "</methodName><params>" + params.map(function (p) {
        return "<param>" + value(p) + "</param>";
      }).join("") + "</params></methodCall>";
    return fetch(HUB, {method: "POST", body: body, headers: {"Content-Type": "text/xml"}})
      .then(function (r) { return r.text(); })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/xml");
        var fault = doc.querySelector("fault");
        if (fault) throw new Error("the SAMP hub refused: " + JSON.stringify(parse(fault.querySelector("value"))));
        return parse(doc.querySelector("params > param > value"));
      });
  }
  // Send a VOTable URL to every SAMP client (TOPCAT, Aladin, ...).
  function sendTable(url, name) {
    var key;
    return call("samp.webhub.register", [{"samp.name": "SKVO portal"}])
      .then(function (reg) {
        key = reg["samp.private-key"];
        return call("samp.webhub.declareMetadata", [key, {
          "samp.name": "SKVO portal",
          "samp.description.text": "Light curves of the SKVO photometry archive"}]);
      })
      .then(function () {
        return call("samp.webhub.notifyAll", [key, {
          "samp.mtype": "table.load.votable",
          "samp.params": {"url": url, "name": name}}]);
      })
      .then(function (recipients) {
        return call("samp.webhub.unregister", [key]).then(function () { return recipients; });
      });
  }
  window.SkvoSamp = {sendTable: sendTable, hub: HUB};
})();
