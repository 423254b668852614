// The NHS.UK frontend's components (header menu, skip link, error summary focus). The pages
// work without it.
import { initAll } from "./vendor/nhsuk/nhsuk-frontend.min.js";

initAll();
