// Filters apply as soon as a menu changes; a row of the list opens its decision.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("filters");
  if (form) form.querySelectorAll("select").forEach((s) => s.addEventListener("change", () => form.submit()));
  document.querySelectorAll("tr.row").forEach((row) => row.addEventListener("click", (e) => {
    if (e.target.tagName !== "A") window.location = row.dataset.href;
  }));
});
