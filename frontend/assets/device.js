// Progressive enhancement for the code-entry page: prefill the code from
// ?user_code= (verification_uri_complete) and format it while typing. The
// page works without this file.
(function () {
  "use strict";
  var ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";

  function normalise(value) {
    var out = "";
    var upper = String(value || "").toUpperCase();
    for (var i = 0; i < upper.length && out.length < 8; i++) {
      if (ALPHABET.indexOf(upper.charAt(i)) >= 0) {
        out += upper.charAt(i);
      }
    }
    return out.length > 4 ? out.slice(0, 4) + "-" + out.slice(4) : out;
  }

  function init() {
    var input = document.getElementById("user_code");
    if (!input) {
      return;
    }
    var given = new URLSearchParams(window.location.search).get("user_code");
    if (given) {
      input.value = normalise(given);
    }
    input.addEventListener("input", function () {
      // Only reformat when the caret is at the end, so editing in the
      // middle does not make the caret jump.
      if (input.selectionStart === input.value.length) {
        input.value = normalise(input.value);
      }
    });
    input.focus();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
