/* app.js - placeholder of the console's front end (replaced by the UI). */
"use strict";
