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

  // explain writes the note in the page's language. The page carries the
  // sentence in each CLDR plural form it needs (data-plural-one, …,
  // data-plural-other, with {letters} to fill); Intl picks the form and
  // writes the list the way the language does ("B, C and D", "B、C、D").
  function explain(note, dropped) {
    if (!note) {
      return;
    }
    if (dropped.length === 0) {
      note.textContent = "";
      return;
    }
    var lang = document.documentElement.lang || "en";
    var form = "other";
    var list = dropped.join(", ");
    try {
      form = new Intl.PluralRules(lang).select(dropped.length);
      if (typeof Intl.ListFormat === "function") {
        list = new Intl.ListFormat(lang, {type: "conjunction"}).format(dropped);
      }
    } catch (e) {
      // An old browser without Intl: the "other" form and commas.
    }
    var text = note.getAttribute("data-plural-" + form) || note.getAttribute("data-plural-other") || "";
    note.textContent = text.split("{letters}").join(list);
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
