// Progressive enhancement for the code-entry page: prefill the code from
// ?user_code= (verification_uri_complete) and format it while typing. The
// page works without this file.
(function () {
  "use strict";
  var ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";

  // leftOut lists, once each, the letters and digits of value that no code
  // uses (vowels, Y, digits): normalise drops them, and the person is told.
  function leftOut(value) {
    var out = [];
    var upper = String(value || "").toUpperCase();
    for (var i = 0; i < upper.length; i++) {
      var c = upper.charAt(i);
      if (/[A-Z0-9]/.test(c) && ALPHABET.indexOf(c) < 0 && out.indexOf(c) < 0) {
        out.push(c);
      }
    }
    return out;
  }

  function explain(note, dropped) {
    if (!note) {
      return;
    }
    note.textContent = dropped.length === 0 ? "" :
      "Codes use only the letters " + ALPHABET.split("").join(" ") +
      " (no vowels, no digits), so " + dropped.join(", ") +
      (dropped.length === 1 ? " was" : " were") + " left out. Check the code on your device.";
  }

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
    var note = document.getElementById("code-note");
    // The letters left out so far: the note stays while the person types
    // on, and goes once the field is emptied or holds a whole code.
    var dropped = [];
    function take(value) {
      leftOut(value).forEach(function (c) {
        if (dropped.indexOf(c) < 0) {
          dropped.push(c);
        }
      });
      var code = normalise(value);
      if (value === "" || code.length === 9) {
        dropped = [];
      }
      explain(note, dropped);
      return code;
    }
    var given = new URLSearchParams(window.location.search).get("user_code");
    if (given) {
      input.value = take(given);
    }
    input.addEventListener("input", function () {
      // Only reformat when the caret is at the end, so editing in the
      // middle does not make the caret jump.
      if (input.selectionStart === input.value.length) {
        input.value = take(input.value);
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
