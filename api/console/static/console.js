// The console works without this script; it only adds a button beside each known_at picker
// that clears it (an empty picker means "as known now").
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll('input[type="datetime-local"]').forEach(function (input) {
    var clear = document.createElement("button");
    clear.type = "button";
    clear.textContent = "清空";
    clear.addEventListener("click", function () { input.value = ""; });
    input.insertAdjacentElement("afterend", clear);
  });
});
