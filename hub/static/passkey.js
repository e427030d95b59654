// Passkeys on the shopper's page: the one script the page has (WebAuthn needs it); every
// other form works without it. A button with data-passkey="create" or "get" runs one
// ceremony: POST data-options -> navigator.credentials -> POST data-finish -> go to `next`.
(function () {
  "use strict";

  function decode(text) {
    var s = text.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function encode(buffer) {
    var bytes = new Uint8Array(buffer), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) { throw new Error(data.error || ""); }
        return data;
      });
    });
  }

  function creation(options) {
    options.challenge = decode(options.challenge);
    options.user.id = decode(options.user.id);
    (options.excludeCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return options;
  }

  function request(options) {
    options.challenge = decode(options.challenge);
    (options.allowCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return options;
  }

  function registration(credential) {
    var r = credential.response;
    return {
      id: credential.id, rawId: encode(credential.rawId), type: credential.type,
      response: {
        clientDataJSON: encode(r.clientDataJSON), attestationObject: encode(r.attestationObject),
        transports: r.getTransports ? r.getTransports() : []
      },
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || null
    };
  }

  function assertion(credential) {
    var r = credential.response;
    return {
      id: credential.id, rawId: encode(credential.rawId), type: credential.type,
      response: {
        clientDataJSON: encode(r.clientDataJSON), authenticatorData: encode(r.authenticatorData),
        signature: encode(r.signature), userHandle: r.userHandle ? encode(r.userHandle) : null
      },
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || null
    };
  }

  function run(button) {
    var status = document.getElementById(button.getAttribute("data-status"));
    var csrf = button.getAttribute("data-csrf") || "";
    var create = button.getAttribute("data-passkey") === "create";
    function say(text, failed) {
      if (!status) { return; }
      status.textContent = text;
      status.className = failed ? "alert" : "note";
      status.hidden = false;
    }
    button.disabled = true;
    say(button.getAttribute("data-working"), false);
    post(button.getAttribute("data-options"), {csrf: csrf}).then(function (start) {
      var ask = create ? navigator.credentials.create({publicKey: creation(start.options)})
                       : navigator.credentials.get({publicKey: request(start.options)});
      return ask.then(function (credential) {
        if (!credential) { throw new Error(""); }
        return post(button.getAttribute("data-finish"), {
          ceremony: start.ceremony, csrf: csrf, credential: create ? registration(credential) : assertion(credential)
        });
      }, function () { throw new Error(button.getAttribute("data-cancelled")); });
    }).then(function (done) {
      window.location.assign(done.next);
    }).catch(function (error) {
      button.disabled = false;
      say(error.message || button.getAttribute("data-failed"), true);
    });
  }

  var buttons = document.querySelectorAll("[data-passkey]");
  var supported = !!(window.PublicKeyCredential && navigator.credentials);
  for (var i = 0; i < buttons.length; i++) {
    var button = buttons[i];
    if (supported) {
      button.hidden = false;
      button.addEventListener("click", function (event) { run(event.currentTarget); });
    } else {
      var note = document.getElementById(button.getAttribute("data-status"));
      if (note) { note.textContent = button.getAttribute("data-unsupported"); note.className = "alert"; note.hidden = false; }
    }
  }
  var off = document.querySelectorAll(".needs-script");
  for (var j = 0; j < off.length; j++) { off[j].hidden = true; }
})();
