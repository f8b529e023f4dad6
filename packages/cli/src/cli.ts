#!/usr/bin/env node
console.log('cxr');
