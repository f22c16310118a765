/**
 * @generated SignedSource<<551780d24cab428bc6fd19e8dba951d0>>
 * @relayHash c59a6625d41f28937bc8602d7dc631db
 * @lightSyntaxTransform
 */

/* eslint-disable */

'use strict';

// @relayRequestID e4e159425704af0d8b262a02e30f9c606589ec6944d3301c48171caa9f63ccfb

var node = (function(){
var v0 = [
  {
    "defaultValue": null,
    "kind": "LocalArgument",
    "name": "id"
  }
],
v1 = [
  {
    "kind": "Variable",
    "name": "id",
    "variableName": "id"
  }
],
v2 = {
  "alias": null,
  "args": null,
  "kind": "ScalarField",
  "name": "deletedId",
  "storageKey": null
};
return {
  "fragment": {
    "argumentDefinitions": (v0/*:: as any*/),
    "kind": "Fragment",
    "metadata": null,
    "name": "AppRemoveMutation",
    "selections": [
      {
        "alias": null,
        "args": (v1/*:: as any*/),
        "concreteType": "RemoveUserOAuthSourceConnectionPayload",
        "kind": "LinkedField",
        "name": "removeUserOAuthSourceConnection",
        "plural": false,
        "selections": [
          (v2/*:: as any*/)
        ],
        "storageKey": null
      }
    ],
    "type": "Mutation",
    "abstractKey": null
  },
  "kind": "Request",
  "operation": {
    "argumentDefinitions": (v0/*:: as any*/),
    "kind": "Operation",
    "name": "AppRemoveMutation",
    "selections": [
      {
        "alias": null,
        "args": (v1/*:: as any*/),
        "concreteType": "RemoveUserOAuthSourceConnectionPayload",
        "kind": "LinkedField",
        "name": "removeUserOAuthSourceConnection",
        "plural": false,
        "selections": [
          (v2/*:: as any*/),
          {
            "alias": null,
            "args": null,
            "filters": null,
            "handle": "deleteRecord",
            "key": "",
            "kind": "ScalarHandle",
            "name": "deletedId"
          }
        ],
        "storageKey": null
      }
    ]
  },
  "params": {
    "id": "e4e159425704af0d8b262a02e30f9c606589ec6944d3301c48171caa9f63ccfb",
    "metadata": {},
    "name": "AppRemoveMutation",
    "operationKind": "mutation",
    "text": null
  }
};
})();

node.hash = "e6a9cc4d57ebe04181354845b941d29e";

export default node;
