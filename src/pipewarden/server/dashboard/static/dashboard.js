// pipewarden dashboard: small progressive enhancements; every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // Times are written in UTC; the title adds the reader's local time.
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when.getTime())) {
      el.title = when.toLocaleString();
    }
  });

  // Filter a table's rows by the text typed (the field stays hidden unless this script runs).
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table) {
      return;
    }
    var row = input.closest("[hidden]");
    if (row) {
      row.hidden = false;
    }
    input.addEventListener("input", function () {
      var wanted = input.value.trim().toLowerCase();
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        tr.hidden = wanted !== "" && tr.textContent.toLowerCase().indexOf(wanted) === -1;
      });
    });
  });

  // After a "skip to content" jump, focus the main region so keyboard users continue from there.
  var skip = document.querySelector("a.skip");
  var main = document.getElementById("content");
  if (skip && main) {
    skip.addEventListener("click", function () {
      main.focus();
    });
  }
});
