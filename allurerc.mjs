// Allure 3 configuration of the mcuqual deployment report (used by `mcuqual-report`).
// The run writes what changes with it (the report's name, which opens with the verdict;
// the defect categories; the tree board > requirement > model) into the results folder
// as mcuqual-allure3.json; mcuqual-report names that folder in MCUQUAL_ALLURE_RESULTS.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const results = process.env.MCUQUAL_ALLURE_RESULTS ?? "./reports/allure-results";
const settingsFile = join(results, "mcuqual-allure3.json");
const settings = existsSync(settingsFile) ? JSON.parse(readFileSync(settingsFile, "utf8")) : {};
const name = settings.name ?? "mcuqual deployment report";

export default {
  name,
  output: "./reports/allure-report",
  historyPath: "./reports/allure-history.jsonl",
  categories: { rules: settings.categories ?? [] },
  plugins: {
    awesome: {
      options: {
        reportName: name,
        groupBy: settings.groupBy ?? ["parentSuite", "suite", "subSuite"],
      },
    },
  },
};
